"""A small graph-building helper for the reference zoo.

:class:`GraphBuilder` collects nodes and initializers, names everything after the scope it is
built in (``/layer1.0/Conv_2``, ``/layer1.0/Conv_2.weight``), draws every weight from one
seeded ``numpy.random.default_rng`` and emits the form each op has at the target opset
(attribute or input, replacement formula where the op does not exist yet).

Weights use a He-like scale (``std = sqrt(gain / fan_in)``) so activations stay O(1) through
deep stacks; BatchNormalization statistics are deliberately non-trivial.
"""
from __future__ import annotations

import contextlib
import math
from typing import Iterable, Iterator, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

MIN_OPSET, MAX_OPSET = 9, 21
PRODUCER = "graphprune.models"
BIAS_STD = 0.1
BN_EPSILON = 1e-5
# Initializers at most this large stay in the skeleton used for output shape inference: they
# hold the shape, scale and axes constants that inference needs, never the big weights.
_SKELETON_MAX_ELEMENTS = 4096

Batch = int | str


def ir_version_for(opset: int) -> int:
    """The lowest IR version that knows ``opset`` (so old runtimes still load the model)."""
    return helper.find_min_ir_version_for([helper.make_opsetid("", opset)])


class GraphBuilder:
    """Collects one ONNX graph; every ``add_*``/op method returns the name of its output."""

    #: opsets this builder can emit (a subclass with newer op forms may widen it)
    opset_range: tuple[int, int] = (MIN_OPSET, MAX_OPSET)

    def __init__(self, name: str, *, opset: int = 17, seed: int = 0, batch: Batch = 1,
                 keep_bn: bool = True):
        low, high = self.opset_range
        if not low <= opset <= high:
            raise ValueError(f"opset {opset} is outside the supported range {low}..{high}")
        if not (isinstance(batch, str) and batch) and not (isinstance(batch, int) and batch >= 1):
            raise ValueError(f"batch must be a positive int or a dim name, got {batch!r}")
        self.name, self.opset, self.batch, self.keep_bn = name, opset, batch, keep_bn
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.inputs: list[onnx.ValueInfoProto] = []
        self.outputs: list[str] = []
        self._scopes: list[str] = []
        self._counts: dict[str, int] = {}

    # ------------------------------------------------------------------ naming and tensors
    @contextlib.contextmanager
    def scope(self, name: str) -> Iterator[None]:
        """Prefix the names of everything built inside the ``with`` block."""
        self._scopes.append(name)
        try:
            yield
        finally:
            self._scopes.pop()

    @property
    def scope_path(self) -> tuple[str, ...]:
        """The scopes the builder is in, outermost first."""
        return tuple(self._scopes)

    def fresh(self, kind: str) -> str:
        """A new unique name ``/scope/.../kind_i``."""
        key = "/" + "/".join([*self._scopes, kind])
        index = self._counts.get(key, 0)
        self._counts[key] = index + 1
        return f"{key}_{index}"

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))
        return name

    def const(self, values, dtype=np.float32) -> str:
        return self.add_initializer(self.fresh("const"), np.asarray(values, dtype=dtype))

    def ints(self, values: Iterable[int]) -> str:
        return self.const(list(values), np.int64)

    def scalar(self, value: float) -> str:
        return self.const(np.float32(value))

    def normal(self, name: str, shape: Sequence[int], std: float, mean: float = 0.0) -> str:
        array = self.rng.standard_normal(tuple(shape), dtype=np.float32) * np.float32(std)
        return self.add_initializer(name, array + np.float32(mean))

    def uniform(self, name: str, shape: Sequence[int], low: float, high: float) -> str:
        return self.add_initializer(name, self.rng.uniform(low, high, tuple(shape)).astype(np.float32))

    def channel_const(self, channels: int, low: float, high: float) -> str:
        """A per-channel constant of shape [C, 1, 1] (broadcasts over an NCHW tensor)."""
        return self.uniform(self.fresh("channel_const"), (channels, 1, 1), low, high)

    def node(self, op: str, inputs: Sequence[str], *, n_out: int = 1, name: str | None = None,
             **attrs) -> str | list[str]:
        """Append one node; attributes whose value is None are left out."""
        name = name or self.fresh(op)
        outputs = [f"{name}_out{i}" for i in range(n_out)]
        attrs = {key: value for key, value in attrs.items() if value is not None}
        self.nodes.append(helper.make_node(op, list(inputs), outputs, name=name, **attrs))
        return outputs[0] if n_out == 1 else outputs

    def unary(self, op: str, x: str, **attrs) -> str:
        return self.node(op, [x], **attrs)

    def binary(self, op: str, a: str, b: str) -> str:
        return self.node(op, [a, b])

    def add(self, a: str, b: str) -> str:
        return self.binary("Add", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.binary("Mul", a, b)

    # ------------------------------------------------------------------ graph inputs/outputs
    def input(self, name: str, dims: Sequence[int]) -> str:
        """A float graph input of shape [batch, *dims]."""
        shape = [self.batch, *dims]
        self.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return name

    def output(self, tensor: str, name: str) -> str:
        """Rename ``tensor`` to ``name`` everywhere and mark it a graph output."""
        for node in self.nodes:
            for field in (node.input, node.output):
                for i, value in enumerate(field):
                    if value == tensor:
                        field[i] = name
        self.outputs.append(name)
        return name

    def finish(self, doc: str = "") -> onnx.ModelProto:
        """The model, with graph outputs typed by shape inference (batch dim kept symbolic)."""
        graph = helper.make_graph(self.nodes, self.name, self.inputs, [], self.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)],
                                  producer_name=PRODUCER, ir_version=ir_version_for(self.opset),
                                  doc_string=doc)
        model.graph.output.extend(self._typed_outputs())
        return model

    def _typed_outputs(self) -> list[onnx.ValueInfoProto]:
        small = [t for t in self.initializers if math.prod(t.dims) <= _SKELETON_MAX_ELEMENTS]
        big = [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims))
               for t in self.initializers if math.prod(t.dims) > _SKELETON_MAX_ELEMENTS]
        skeleton = helper.make_model(
            helper.make_graph(self.nodes, self.name, [*self.inputs, *big], [], small),
            opset_imports=[helper.make_opsetid("", self.opset)], ir_version=ir_version_for(self.opset))
        inferred = shape_inference.infer_shapes(skeleton, strict_mode=True).graph.value_info
        types = {vi.name: vi.type.tensor_type for vi in inferred}
        return [self._output_info(name, types.get(name)) for name in self.outputs]

    def _output_info(self, name: str, tensor_type) -> onnx.ValueInfoProto:
        if tensor_type is None or not tensor_type.HasField("shape"):
            raise ValueError(f"{self.name}: shape inference gives no shape for output {name!r}")
        dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
        if any(d is None for d in dims[1:]):
            raise ValueError(f"{self.name}: output {name!r} has a non-static dim beyond batch: {dims}")
        return helper.make_tensor_value_info(name, tensor_type.elem_type, [self.batch, *dims[1:]])

    # ------------------------------------------------------------------ convolution family
    def conv(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, *, groups: int = 1,
             dilation: int = 1, pad: int | None = None, bias: bool = False, gain: float = 2.0) -> str:
        name = self.fresh("Conv")
        fan_in = cin // groups * k * k
        inputs = [x, self.normal(f"{name}.weight", (cout, cin // groups, k, k), math.sqrt(gain / fan_in))]
        if bias:
            inputs.append(self.normal(f"{name}.bias", (cout,), BIAS_STD))
        pad = dilation * (k - 1) // 2 if pad is None else pad
        return self.node("Conv", inputs, name=name, kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, dilations=[dilation, dilation], group=groups)

    def conv_transpose(self, x: str, cin: int, cout: int, k: int = 2, stride: int = 2, *,
                       groups: int = 1, bias: bool = True) -> str:
        name = self.fresh("ConvTranspose")
        fan_in = cin // groups * max(1, k // stride) ** 2
        inputs = [x, self.normal(f"{name}.weight", (cin, cout // groups, k, k), math.sqrt(2.0 / fan_in))]
        if bias:
            inputs.append(self.normal(f"{name}.bias", (cout,), BIAS_STD))
        return self.node("ConvTranspose", inputs, name=name, kernel_shape=[k, k],
                         strides=[stride, stride], pads=[0] * 4, group=groups)

    def batchnorm(self, x: str, channels: int) -> str:
        name = self.fresh("BatchNormalization")
        params = [self.uniform(f"{name}.weight", (channels,), 0.5, 1.5),
                  self.normal(f"{name}.bias", (channels,), 0.2),
                  self.normal(f"{name}.running_mean", (channels,), 0.2),
                  self.uniform(f"{name}.running_var", (channels,), 0.5, 2.0)]
        return self.node("BatchNormalization", [x, *params], name=name, epsilon=BN_EPSILON, momentum=0.9)

    def norm_act(self, x: str, channels: int, act: str | None = "relu") -> str:
        """Pre-activation: BN (when ``keep_bn``) then the activation."""
        return self.act(self.batchnorm(x, channels) if self.keep_bn else x, act)

    def conv_norm(self, x: str, cin: int, cout: int, k: int = 3, stride: int = 1, *, groups: int = 1,
                  dilation: int = 1, pad: int | None = None, act: str | None = None, gain: float = 2.0,
                  bias: bool = False) -> str:
        """Conv -> BatchNormalization (``keep_bn``) or Conv with bias, then ``act``.

        ``bias=True`` keeps a conv bias in front of the BN too (as torchvision's VGG-BN does).
        A small ``gain`` on the last conv of a residual branch keeps the sum of many blocks
        O(1) (BN in inference form does not renormalize).
        """
        y = self.conv(x, cin, cout, k, stride, groups=groups, dilation=dilation, pad=pad,
                      bias=bias or not self.keep_bn, gain=gain)
        return self.act(self.batchnorm(y, cout) if self.keep_bn else y, act)

    def instance_norm(self, x: str, channels: int) -> str:
        name = self.fresh("InstanceNormalization")
        scale = self.uniform(f"{name}.weight", (channels,), 0.5, 1.5)
        bias = self.normal(f"{name}.bias", (channels,), 0.2)
        return self.node("InstanceNormalization", [x, scale, bias], name=name, epsilon=BN_EPSILON)

    def prelu(self, x: str, channels: int) -> str:
        name = self.fresh("PRelu")
        return self.node("PRelu", [x, self.uniform(f"{name}.slope", (channels, 1, 1), 0.05, 0.3)], name=name)

    # ------------------------------------------------------------------ dense layers
    def gemm(self, x: str, fin: int, fout: int, *, trans_a: bool = False, trans_b: bool = True,
             gain: float = 1.0) -> str:
        name = self.fresh("Gemm")
        shape = (fout, fin) if trans_b else (fin, fout)
        weight = self.normal(f"{name}.weight", shape, math.sqrt(gain / fin))
        bias = self.normal(f"{name}.bias", (fout,), BIAS_STD)
        return self.node("Gemm", [x, weight, bias], name=name, alpha=1.0, beta=1.0,
                         transA=int(trans_a), transB=int(trans_b))

    def matmul(self, x: str, fin: int, fout: int, gain: float = 1.0) -> str:
        """MatMul with a constant [fin, fout] weight, then Add of a [fout] bias."""
        name = self.fresh("MatMul")
        weight = self.normal(f"{name}.weight", (fin, fout), math.sqrt(gain / fin))
        y = self.node("MatMul", [x, weight], name=name)
        return self.add(y, self.normal(f"{name}.bias", (fout,), BIAS_STD))

    # ------------------------------------------------------------------ activations
    def act(self, x: str, kind: str | None) -> str:
        if kind is None:
            return x
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}
        if kind in simple:
            return self.unary(simple[kind], x)
        special = {"relu6": self.relu6, "silu": self.silu, "hardswish": self.hardswish,
                   "hardsigmoid": self.hardsigmoid, "mish": self.mish, "gelu": self.gelu}
        if kind not in special:
            raise ValueError(f"unknown activation {kind!r}")
        return special[kind](x)

    def clip(self, x: str, low: float, high: float) -> str:
        if self.opset < 11:
            return self.node("Clip", [x], min=float(low), max=float(high))
        return self.node("Clip", [x, self.scalar(low), self.scalar(high)])

    def relu6(self, x: str) -> str:
        return self.clip(x, 0.0, 6.0)

    def silu(self, x: str) -> str:
        return self.mul(x, self.unary("Sigmoid", x))

    def hardsigmoid(self, x: str) -> str:
        """PyTorch's hardsigmoid: relu6(x + 3) / 6."""
        return self.node("HardSigmoid", [x], alpha=1.0 / 6.0, beta=0.5)

    def hardswish(self, x: str) -> str:
        if self.opset >= 14:
            return self.unary("HardSwish", x)
        return self.mul(x, self.hardsigmoid(x))

    def mish(self, x: str) -> str:
        if self.opset >= 18:
            return self.unary("Mish", x)
        return self.mul(x, self.unary("Tanh", self.unary("Softplus", x)))

    def gelu(self, x: str) -> str:
        if self.opset >= 20:
            return self.unary("Gelu", x)
        erf = self.unary("Erf", self.binary("Div", x, self.scalar(math.sqrt(2.0))))
        return self.mul(self.mul(x, self.add(erf, self.scalar(1.0))), self.scalar(0.5))

    # ------------------------------------------------------------------ pooling and reductions
    def maxpool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        return self.node("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4)

    def avgpool(self, x: str, k: int, stride: int, pad: int = 0) -> str:
        return self.node("AveragePool", [x], kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4, count_include_pad=0)

    def reduce(self, op: str, x: str, axes: Sequence[int], keepdims: bool) -> str:
        """ReduceSum takes axes as an input from opset 13, the other Reduce* from opset 18."""
        axes_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if axes_input:
            return self.node(op, [x, self.ints(axes)], keepdims=int(keepdims))
        return self.node(op, [x], axes=list(axes), keepdims=int(keepdims))

    # ------------------------------------------------------------------ shape and layout
    def concat(self, xs: Sequence[str], axis: int = 1) -> str:
        return self.node("Concat", list(xs), axis=axis)

    def flatten(self, x: str, axis: int = 1) -> str:
        return self.node("Flatten", [x], axis=axis)

    def reshape(self, x: str, shape: Sequence[int]) -> str:
        return self.node("Reshape", [x, self.ints(shape)])

    def transpose(self, x: str, perm: Sequence[int]) -> str:
        return self.node("Transpose", [x], perm=list(perm))

    def split(self, x: str, sizes: Sequence[int], axis: int = 1) -> list[str]:
        """Split sizes: attribute before 13, input from 13; equal parts use num_outputs at 18+."""
        n = len(sizes)
        if self.opset < 13:
            return self.node("Split", [x], n_out=n, axis=axis, split=list(sizes))
        if self.opset >= 18 and len(set(sizes)) == 1:
            return self.node("Split", [x], n_out=n, axis=axis, num_outputs=n)
        return self.node("Split", [x, self.ints(sizes)], n_out=n, axis=axis)

    def slice(self, x: str, start: int, end: int, axis: int = 1) -> str:
        """Slice attributes at opset 9, inputs from 10."""
        if self.opset < 10:
            return self.node("Slice", [x], starts=[start], ends=[end], axes=[axis])
        return self.node("Slice", [x, self.ints([start]), self.ints([end]), self.ints([axis])])

    def squeeze(self, x: str, axes: Sequence[int]) -> str:
        return self._axes_op("Squeeze", x, axes)

    def unsqueeze(self, x: str, axes: Sequence[int]) -> str:
        return self._axes_op("Unsqueeze", x, axes)

    def _axes_op(self, op: str, x: str, axes: Sequence[int]) -> str:
        if self.opset < 13:
            return self.node(op, [x], axes=list(axes))
        return self.node(op, [x, self.ints(axes)])

    def pad(self, x: str, pads_hw: Sequence[int], mode: str = "constant", value: float = 0.0) -> str:
        """Spatial pads (top, left, bottom, right): attribute before 11, input from 11, axes at 18+."""
        top, left, bottom, right = pads_hw
        full = [0, 0, top, left, 0, 0, bottom, right]
        fill = {"value": float(value)} if mode == "constant" else {}
        if self.opset < 11:
            return self.node("Pad", [x], pads=full, mode=mode, **fill)
        constant = self.scalar(value) if mode == "constant" else ""
        if self.opset >= 18:
            return self.node("Pad", [x, self.ints(pads_hw), constant, self.ints([2, 3])], mode=mode)
        return self.node("Pad", [x, self.ints(full)] + ([constant] if constant else []), mode=mode)

    def resize(self, x: str, scale: int = 2, mode: str = "nearest", sizes_hw: Sequence[int] | None = None) -> str:
        """Upsample at 9, Resize(X, scales) at 10, Resize(X, roi, scales[, sizes]) from 11.

        ``sizes_hw`` selects the sizes form with ``axes=[2, 3]`` (opset 18+, so the batch can
        stay symbolic); below 18 the scales form is used.
        """
        scales = self.const([1.0, 1.0, float(scale), float(scale)])
        if self.opset < 10:
            return self.node("Upsample", [x, scales], mode=mode)
        if self.opset == 10:
            return self.node("Resize", [x, scales], mode=mode)
        attrs = {"mode": mode}
        if mode == "nearest":
            attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        else:
            attrs.update(coordinate_transformation_mode="half_pixel")
        if sizes_hw is not None and self.opset >= 18:
            return self.node("Resize", [x, "", "", self.ints(sizes_hw)], axes=[2, 3], **attrs)
        roi = self.const(np.zeros(0)) if self.opset < 13 else ""
        return self.node("Resize", [x, roi, scales], **attrs)

    def dropout(self, x: str, ratio: float) -> str:
        """Dropout ratio: attribute before 12, optional input from 12 (inference: identity)."""
        if self.opset < 12:
            return self.node("Dropout", [x], ratio=float(ratio))
        return self.node("Dropout", [x, self.scalar(ratio)])

    def cast(self, x: str, to: int) -> str:
        return self.node("Cast", [x], to=to)

    def depth_to_space(self, x: str, block: int, mode: str = "DCR") -> str:
        """DepthToSpace; the mode attribute exists from opset 11 (before that: DCR only)."""
        if self.opset < 11:
            if mode != "DCR":
                raise ValueError(f"DepthToSpace mode {mode} needs opset >= 11 (got {self.opset})")
            return self.node("DepthToSpace", [x], blocksize=block)
        return self.node("DepthToSpace", [x], blocksize=block, mode=mode)
