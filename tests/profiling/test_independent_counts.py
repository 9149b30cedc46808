"""MACs of the linear ops (which carry 88-99% of every zoo model's work) against an independent
count: shapes measured by running the model in onnxruntime, textbook formulas written here.

* Conv: numel(Y) · (C_in / group) · prod(kernel)
* ConvTranspose: numel(X) · (C_out / group) · prod(kernel) (every input element is spread over
  C_out/g · k outputs)
* Gemm: M · N · K;  MatMul: numel(Y) · K
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from graphprune.profiling import profile
from models.zoo import ZOO, build
from tests.helpers.onnxrt import random_feeds, session

LINEAR = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _measured_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor read or written by a linear node, from one onnxruntime run."""
    wanted = {t for n in model.graph.node if n.op_type in LINEAR for t in [*n.input[:1], *n.output]}
    inits = {t.name: tuple(t.dims) for t in model.graph.initializer}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    existing = {o.name for o in probe.graph.output}
    for name in sorted(wanted - existing - set(inits)):
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sess = session(probe)
    names = [o.name for o in sess.get_outputs()]
    values = dict(zip(names, sess.run(names, random_feeds(model))))
    return {**inits, **{k: v.shape for k, v in values.items()}}


def _textbook_macs(model: onnx.ModelProto) -> int:
    shapes = _measured_shapes(model)
    total = 0
    for n in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if n.op_type == "Conv":
            w = shapes[n.input[1]]
            total += int(np.prod(shapes[n.output[0]])) * w[1] * int(np.prod(w[2:]))
        elif n.op_type == "ConvTranspose":
            w = shapes[n.input[1]]
            total += int(np.prod(shapes[n.input[0]])) * w[1] * int(np.prod(w[2:]))
        elif n.op_type == "Gemm":
            a = shapes[n.input[0]]
            k = a[0] if attrs.get("transA", 0) else a[1]
            total += int(np.prod(shapes[n.output[0]])) * k
        elif n.op_type == "MatMul":
            total += int(np.prod(shapes[n.output[0]])) * shapes[n.input[0]][-1]
    return total


@pytest.mark.parametrize("name", sorted(ZOO))
def test_linear_macs_match_textbook_formulas(name):
    model = build(name)
    ours = sum(n.macs or 0 for n in profile(model).nodes if n.op_type in LINEAR)
    theirs = _textbook_macs(model)
    assert theirs > 0
    assert abs(ours - theirs) <= 0.01 * theirs, f"{name}: graphprune {ours:,} vs textbook {theirs:,}"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_linear_ops_carry_almost_all_the_work(name):
    p = profile(build(name))
    linear = sum(n.macs or 0 for n in p.nodes if n.op_type in LINEAR)
    assert linear >= 0.85 * p.total_macs
