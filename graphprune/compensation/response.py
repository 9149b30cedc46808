"""A consumer's response to a constant input, computed by running the consumer node itself.

For a consumer node ``f`` that is affine in its activation input ``x`` (every contraction is:
Conv, ConvTranspose, Gemm, MatMul... whatever a rule marks as a consumer), replacing the
removed channels of ``x`` by constants ``μ`` instead of dropping them adds
``Δ = f(μ·e) − f(0)`` to its output, where ``μ·e`` is ``μ`` on the removed channels and 0
elsewhere. Every site's node is copied into one small model (its activation input renamed to a
graph input, its parameters copied) and run by onnxruntime on ``0``, ``μ·e`` and ``2μ·e``; the
last run checks that the node is affine (``f(2μe) − f(0) = 2Δ``) before Δ is used. No op type is
looked at.

A probe may name another ``source`` model for its node's parameters (sequential reconstruction
evaluates the consumer as it was before any repair); each source's initializers get their own
names in the probe model.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir

from ..graph.model import tensor_into
from ..validation.runner import make_session

log = logging.getLogger(__name__)

#: relative tolerance of the affinity check f(2μ) - f(0) = 2 (f(μ) - f(0))
AFFINE_RTOL = 1e-3


@dataclass(frozen=True)
class Probe:
    """One consumer node to evaluate: ``node`` with input ``index`` fed by ``x`` (a full array)."""

    node: onnx.NodeProto
    index: int
    x: np.ndarray
    #: the model whose initializers the node reads (default: the model given to :func:`responses`)
    source: ir.Model | None = None


def _probe_model(model: ir.Model, probes: list[Probe]) -> onnx.ModelProto:
    graph = onnx.GraphProto(name="compensation_probe")
    sources: dict[int, tuple[str, ir.Model]] = {id(model): ("", model)}
    used: dict[str, tuple[ir.Model, str]] = {}
    for i, probe in enumerate(probes):
        source = probe.source if probe.source is not None else model
        prefix, _ = sources.setdefault(id(source), (f"source{len(sources)}_", source))
        node = onnx.NodeProto()
        node.CopyFrom(probe.node)
        node.name = f"probe{i}"
        for k, name in enumerate(node.input):
            if name and k != probe.index:
                node.input[k] = prefix + name
                used[prefix + name] = (source, name)
        node.input[probe.index] = f"probe{i}_x"
        for j in range(len(node.output)):
            if node.output[j]:
                node.output[j] = f"probe{i}_y{j}"
        graph.node.append(node)
        elem = onnx.helper.np_dtype_to_tensor_dtype(probe.x.dtype)
        graph.input.append(onnx.helper.make_tensor_value_info(f"probe{i}_x", elem, list(probe.x.shape)))
        graph.output.append(onnx.helper.make_empty_tensor_value_info(f"probe{i}_y0"))
    for name in sorted(used):
        source, original = used[name]
        tensor_into(graph.initializer.add(), source.graph.initializers[original].const_value, name)
    opsets = [onnx.helper.make_opsetid(d, v) for d, v in model.opset_imports.items()]
    out = onnx.helper.make_model(graph, opset_imports=opsets)
    out.ir_version = model.ir_version
    return out


def _runner(model: ir.Model, probes: list[Probe]):
    """``run(scale)``: every probe's output with its input ``x`` multiplied by ``scale``."""
    session = make_session(_probe_model(model, probes), exact=True, label="compensation probe")
    names = [f"probe{i}_y0" for i in range(len(probes))]

    def run(scale: float) -> list[np.ndarray]:
        feed = {f"probe{i}_x": (p.x * p.x.dtype.type(scale)) for i, p in enumerate(probes)}
        return [np.asarray(v, dtype=np.float64) for v in session.run(names, feed)]

    return run


def responses(model: ir.Model, probes: list[Probe]) -> list[np.ndarray | None]:
    """Δ for every probe (None when the node is not affine in that input)."""
    if not probes:
        return []
    run = _runner(model, probes)
    zero, one, two = run(0.0), run(1.0), run(2.0)
    out: list[np.ndarray | None] = []
    for p, y0, y1, y2 in zip(probes, zero, one, two):
        delta = y1 - y0
        scale = max(float(np.abs(delta).max()), 1e-12)
        if float(np.abs((y2 - y0) - 2 * delta).max()) > AFFINE_RTOL * 2 * scale + 1e-6:
            log.info("node %s is not affine in input %d; not compensated", p.node.name, p.index)
            out.append(None)
        else:
            out.append(delta)
    return out
