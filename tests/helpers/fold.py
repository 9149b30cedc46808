"""The fold tests' seeded graph builder and exactness check (no tests here)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import helper, numpy_helper

from graphprune.graph.model import from_proto
from graphprune.passes.fold import FoldResult, fold
from tests.helpers.onnxrt import assert_outputs_close, random_feeds, run

#: Folding moves the BN scale inside the Conv/Gemm sum (Σ (s·W)·x + b' instead of
#: s·(Σ W·x + b) + t), so float32 rounds at different points and outputs near zero
#: (cancellation) miss rtol=1e-5 alone. Measured on the zoo: the original float32 graph is
#: already up to ~1.3e-6 × max|output| away from a float64 evaluation of itself, the folded one
#: as close, so the two differ by up to ~3e-6 × max|output| on deep models. The absolute
#: tolerance is this fraction of the output's largest magnitude (rtol stays 1e-5).
SUMMATION_ATOL = 1e-5

#: float16 has a 10-bit mantissa (ulp 2⁻¹⁰ ≈ 9.8e-4 relative): the folded graph rounds the
#: products W·s once where the original rounds the Conv output and the BN separately, so they
#: differ by about one ulp of the largest output; two ulps, relative and × max|output|.
FP16_TOL = 2e-3


class GraphBuilder:
    """Seeded builder: ``b = GraphBuilder(); y = b.conv(b.input([1, 3, 8, 8]), 3, 4); b.model(y)``."""

    def __init__(self, opset: int = 17, dtype=np.float32, seed: int = 0):
        self.opset, self.dtype = opset, np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self._count = 0

    @property
    def elem_type(self) -> int:
        return helper.np_dtype_to_tensor_dtype(self.dtype)

    def fresh(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def input(self, shape, name: str = "x", elem_type: int | None = None) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type or self.elem_type, shape))
        return name

    def const(self, value=None, shape=None, name: str | None = None, low=None, high=None) -> str:
        """An initializer: ``value`` as given, else seeded normal (or uniform in [low, high))."""
        if value is None:
            value = (self.rng.uniform(low, high, shape) if low is not None else self.rng.standard_normal(shape))
        value = np.asarray(value)
        if value.dtype.kind == "f":
            value = value.astype(self.dtype)
        name = name or self.fresh("c")
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def op(self, op_type: str, inputs, outputs: int | list = 1, name: str | None = None, **attrs) -> str:
        outs = outputs if isinstance(outputs, list) else [self.fresh("t") for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=name or self.fresh(op_type), **attrs))
        return outs[0]

    def conv(self, x, cin, cout, k=3, group=1, bias=True, **attrs) -> str:
        w = self.const(shape=(cout, cin // group, k, k))
        b = [self.const(shape=(cout,))] if bias else []
        return self.op("Conv", [x, w, *b], group=group, **attrs)

    def convtranspose(self, x, cin, cout, k=3, group=1, bias=True, **attrs) -> str:
        w = self.const(shape=(cin, cout // group, k, k))
        b = [self.const(shape=(cout,))] if bias else []
        return self.op("ConvTranspose", [x, w, *b], group=group, **attrs)

    def gemm(self, x, k, n, trans_b=0, bias: str | None = "vector", m=None, **attrs) -> str:
        w = self.const(shape=(n, k) if trans_b else (k, n))
        shapes = {"vector": (n,), "matrix": (m, n), "column": (m, 1), "scalar": ()}
        c = [self.const(shape=shapes[bias])] if bias else []
        return self.op("Gemm", [x, w, *c], transB=trans_b, **attrs)

    def matmul(self, x, k, n) -> str:
        return self.op("MatMul", [x, self.const(shape=(k, n))])

    def bn_params(self, c, zero_shift=False) -> list[str]:
        scale = self.const(low=0.5, high=1.5, shape=(c,))
        if zero_shift:
            return [scale, self.const(np.zeros(c)), self.const(np.zeros(c)), self.const(low=0.5, high=2.0, shape=(c,))]
        return [scale, self.const(shape=(c,)), self.const(shape=(c,)), self.const(low=0.5, high=2.0, shape=(c,))]

    def bn(self, x, c, zero_shift=False, outputs: int | list = 1, **attrs) -> str:
        return self.op("BatchNormalization", [x, *self.bn_params(c, zero_shift)], outputs=outputs, **attrs)

    def model(self, *outputs: str) -> onnx.ModelProto:
        outs = [helper.make_empty_tensor_value_info(o) for o in outputs]
        graph = helper.make_graph(self.nodes, "g", self.inputs, outs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        model.ir_version = 8
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        types = {vi.name: vi.type for vi in [*inferred.graph.value_info, *inferred.graph.output]}
        for out in model.graph.output:
            if out.name in types:
                out.type.CopyFrom(types[out.name])
        onnx.checker.check_model(model)
        return model


def op_counts(model: onnx.ModelProto) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def init_shapes(model: onnx.ModelProto, node: onnx.NodeProto) -> list[tuple]:
    """Shapes of the initializer inputs of ``node`` (in input order, graph inputs skipped)."""
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    return [inits[i] for i in node.input if i in inits]


def only(model: onnx.ModelProto, op_type: str) -> onnx.NodeProto:
    nodes = [n for n in model.graph.node if n.op_type == op_type]
    assert len(nodes) == 1, f"expected one {op_type}, found {len(nodes)}"
    return nodes[0]


def assert_fold_exact(reference: onnx.ModelProto, folded: onnx.ModelProto, seeds=(0, 1), rtol: float = 1e-5,
                      atol: float = SUMMATION_ATOL) -> None:
    """Outputs of ``folded`` equal those of ``reference`` under ORT (no graph optimizations) on
    seeded random inputs, to ``rtol`` and ``atol × max|reference output|``."""
    for seed in seeds:
        feeds = random_feeds(reference, seed=seed)
        expected, actual = run(reference, feeds), run(folded, feeds)
        assert expected.keys() == actual.keys()
        for name, value in expected.items():
            scale = max(1.0, float(np.abs(value.astype(np.float64)).max()))
            assert_outputs_close({name: value}, {name: actual[name]}, rtol=rtol, atol=atol * scale)


def fold_checked(model: onnx.ModelProto, rtol: float = 1e-5, atol: float = SUMMATION_ATOL, **kwargs) -> FoldResult:
    """Fold the editable graph of ``model`` (which stays untouched), check the result with the ONNX
    checker and :func:`assert_fold_exact`."""
    before = model.SerializeToString()
    result = fold(from_proto(model), **kwargs)
    folded = result.model
    onnx.checker.check_model(folded)
    assert_fold_exact(model, folded, rtol=rtol, atol=atol)
    assert model.SerializeToString() == before, "folding the editable graph modified the ModelProto"
    return result
