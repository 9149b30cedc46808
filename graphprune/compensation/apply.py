"""Fold the removed channels' calibration means into every consumer's output.

For each consumer site reading a compensated activation space, Δ (see :mod:`.response`) is
reduced to one constant per output channel and added after the node by a new ``Add``; the
existing BatchNorm/affine folding (:func:`graphprune.passes.fold.fold`) then merges that ``Add``
into the node's bias (creating one if the node had none) wherever it can, so no op knowledge is
needed here either.

The output channel axes are the output axes that share a group with the node's own parameters
(a Conv's weight axis 0, a Gemm's output axis...). Δ is averaged over every other axis: exact
for 1×1 convolutions and dense layers (Δ is constant there); for k×k convolutions with zero
padding the border outputs see fewer taps of the removed channel than the interior, so the
constant (the mean of Δ over positions, its least-squares best fit) over-corrects the border
slightly. The report lists these nodes with the RMS of the missed part relative to Δ's.

With a re-fit (:mod:`.means`), a consumer whose weight axis maps one to one onto the activation
first gets ``W_K += W_R A``, and its constant input is the intercept instead of the mean.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_ir as ir

from ..analysis.types import Analysis
from ..calibration.sites import axis_slots, consumer_sites, whole
from ..graph import edit
from ..graph.model import node_into
from ..graph.nodes import inputs
from .means import SpaceMeans
from .response import Probe, responses

log = logging.getLogger(__name__)

#: Δ varying along a reduced axis by more than this (relative) marks the node as approximated
APPROX_RTOL = 1e-5


@dataclass
class CompensationReport:
    compensated: list = field(default_factory=list)
    approximate: dict = field(default_factory=dict)  # node -> relative RMS deviation (padding borders)
    skipped: dict = field(default_factory=dict)      # node -> reason
    into_bias: int = 0
    refit: list = field(default_factory=list)        # consumers whose kept weights were re-fitted

    def summary_line(self) -> str:
        text = (f"compensation: {len(self.compensated)} consumer nodes corrected with the removed channels' means "
                f"({self.into_bias} folded into biases)")
        if self.refit:
            text += f"; {len(self.refit)} re-fitted by least squares"
        if self.approximate:
            worst = max(self.approximate.values())
            text += (f"; {len(self.approximate)} nodes approximated at padded borders (relative RMS error up to "
                     f"{worst:.1%})")
        if self.skipped:
            text += f"; {len(self.skipped)} not compensated"
        return text

    def to_dict(self) -> dict:
        return {"compensated": list(self.compensated), "approximate": dict(self.approximate),
                "skipped": dict(self.skipped), "into_bias": self.into_bias, "refit": list(self.refit)}


def unsupported_consumer(node: ir.Node, input_index: int, index) -> str | None:
    """Why a consumer node cannot be evaluated alone on a constant input (None when it can)."""
    if node.domain not in ("", "ai.onnx"):
        return f"custom-domain op {node.domain}.{node.op_type}"
    names = inputs(node)
    x = names[input_index]
    for k, name in enumerate(names):
        if not name or k == input_index:
            continue
        if name == x:
            return "reads the activation twice"
        if not index.is_constant(name):
            return f"also reads activation {name}"
    return None


def _constant_input(means: SpaceMeans, values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The activation with ``values`` on the removed positions and 0 elsewhere."""
    x = np.zeros(means.shape, dtype=dtype)
    where = [slice(None)] * x.ndim
    where[means.space.axis] = means.positions
    values_shape = [1] * x.ndim
    values_shape[means.space.axis] = means.positions.size
    x[tuple(where)] = np.asarray(values).reshape(values_shape).astype(dtype)
    return x


def channel_axes(analysis: Analysis, node: ir.Node) -> set[int]:
    """Axes of the node's first output (whole, or one of their parts) that share a group with one of
    the node's parameters."""
    out = node.outputs[0].name
    names = set(inputs(node))
    axes = set()
    for group in analysis.groups:
        if any(p.initializer in names for p in group.params):
            axes.update(s.axis for s in group.spaces if s.tensor == out)
    return axes


def per_channel(delta: np.ndarray, keep: set[int]) -> tuple[np.ndarray, float]:
    """Δ averaged over every axis not in ``keep`` (keepdims), and the RMS of what that misses
    relative to the RMS of Δ (0 when Δ is constant along those axes)."""
    reduced = delta
    for axis in range(delta.ndim):
        if axis not in keep:
            reduced = reduced.mean(axis=axis, keepdims=True)
    scale = float(np.sqrt(np.mean(delta * delta))) or 1.0
    return reduced, float(np.sqrt(np.mean((delta - reduced) ** 2))) / scale


def maps_one_to_one(analysis: Analysis, activation, weight) -> bool:
    """Whether position ``i`` of the ``weight`` axis is position ``i`` of the ``activation`` axis, and
    the weight is read by one node alone: what re-fitting or rescaling a weight needs. The group's
    slots say so; a group without slots (a size somewhere in it is unknown) asks the node's rule."""
    uses = analysis.index.uses(weight.tensor)
    if len(uses) != 1 or activation not in analysis.space_group:
        return False
    group = analysis.groups[analysis.space_group[activation]]
    a, w = group.slot_of.get(activation), group.slot_of.get(weight)
    if a is None or w is None:
        return _identity_link(analysis, analysis.index.nodes[uses[0].node], weight, activation)
    return a.size == w.size and np.array_equal(a, w)


def _identity_link(analysis: Analysis, node: ir.Node, one, other) -> bool:
    from ..analysis.evaluate import evaluate_rule
    from ..rules import DEFAULT_RULES

    result = evaluate_rule(DEFAULT_RULES, analysis.index, node)
    for link in result.links if result is not None else ():
        if {link.a, link.b} == {one, other}:
            return link.pairs is None or bool(np.array_equal(link.pairs[:, 0], link.pairs[:, 1]))
    return False


def _refittable(analysis: Analysis, site, means: SpaceMeans) -> bool:
    """The re-fit needs the consumer's weight axis to map one to one onto the activation, and the
    weight to be read by this node alone."""
    if not means.refit or len(analysis.index.uses(site.weight.tensor)) != 1:
        return False
    return axes_match(analysis, whole(site.activation), whole(site.weight), means.positions.size + means.kept.size)


def axes_match(analysis: Analysis, activation, weight, size: int) -> bool:
    """Whether, in every group on the whole axis ``activation`` (the axis itself, or its heads or head
    dims), the whole axis ``weight`` has the same slot at every one of the ``size`` positions (and at
    least one group is there)."""
    if analysis.index.array(weight.tensor).shape[weight.axis] != size:
        return False
    found = False
    for group in analysis.groups:
        on_activation = axis_slots(group, activation, size)
        if on_activation is None:
            continue
        on_weight = axis_slots(group, weight, size)
        if on_weight is None or not np.array_equal(on_activation, on_weight):
            return False
        found = True
    return found


def _refit_weight(model: ir.Model, analysis: Analysis, site, means: SpaceMeans) -> None:
    """W_K += W_R A along the consumer axis (the removed columns go with pruning)."""
    array = np.asarray(analysis.index.array(site.weight.tensor))
    moved = np.moveaxis(array.astype(np.float64), site.weight.axis, -1).copy()
    moved[..., means.kept] += moved[..., means.positions] @ means.matrix
    updated = np.moveaxis(moved, -1, site.weight.axis).astype(array.dtype)
    edit.write_initializer(model.graph.initializers[site.weight.tensor], updated)


def _collect_probes(model: ir.Model, analysis: Analysis, data: list[SpaceMeans],
                    report: CompensationReport, leave) -> list[Probe]:
    index = analysis.index
    by_space: dict = {}
    for group in analysis.groups:
        for site in consumer_sites(group, index):
            by_space.setdefault(whole(site.activation), []).append(site)
    probes, seen = [], set()
    for means in data:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(index.elem_type(means.space.tensor) or 1))
        for site in by_space.get(means.space, ()):
            if (site.node, site.input_index) in seen or site.node in leave:
                continue
            seen.add((site.node, site.input_index))
            node = index.nodes[site.node]
            reason = unsupported_consumer(node, site.input_index, index)
            if reason:
                report.skipped[site.node] = reason
                continue
            values = means.values
            if _refittable(analysis, site, means):
                _refit_weight(model, analysis, site, means)
                values = means.intercept
                report.refit.append(site.node)
            proto = onnx.NodeProto()
            node_into(proto, node)
            probes.append(Probe(proto, site.input_index, _constant_input(means, values, dtype)))
    return probes


def _insert_add(model: ir.Model, node: ir.Node, constant: np.ndarray, names: edit.Names) -> str:
    """``y = node(...)`` becomes ``y__uncompensated = node(...)``, ``y = Add(y__uncompensated, Δ)``."""
    out = node.outputs[0].name
    bases = (f"{out}__uncompensated", f"{node.name}_compensation", f"{node.name}_compensate")
    return edit.add_after(model, node, constant, names, bases).name


@dataclass
class Offsets:
    """What :func:`add_offsets` did: the Add nodes inserted, how many were folded into a bias, and the
    nodes whose offset varies along a non-channel axis (relative RMS of what a constant misses)."""

    added: list = field(default_factory=list)
    into_bias: int = 0
    approximate: dict = field(default_factory=dict)


def add_offsets(model: ir.Model, analysis: Analysis, offsets: list, *, fold_bias: bool = True,
                fold_batchnorm: bool = True) -> Offsets:
    """Add ``offset`` (reduced to one constant per output channel) after each ``(node, offset)``, then
    fold the Adds into the nodes' biases where the folding passes can."""
    out = Offsets()
    names = edit.Names(model.graph)
    names.taken |= {n.name for n in model.graph}
    for node, offset in offsets:
        constant, deviation = per_channel(offset, channel_axes(analysis, node))
        if deviation > APPROX_RTOL:
            out.approximate[node.name] = deviation
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(analysis.index.elem_type(node.outputs[0].name) or 1))
        out.added.append(_insert_add(model, node, constant.astype(dtype), names))
    if out.added and fold_bias:
        from ..passes.fold import fold

        fold(model, batchnorm=fold_batchnorm)
        left = {n.name for n in model.graph}
        out.into_bias = sum(1 for name in out.added if name not in left)
    return out


def compensate(model: ir.Model, analysis: Analysis, data: list[SpaceMeans], *, fold_bias: bool = True,
               fold_batchnorm: bool = True, leave=frozenset()) -> CompensationReport:
    """Edit ``model`` (the analysed object, before pruning) so every consumer adds its Δ; consumer
    nodes named in ``leave`` are left alone (another repair re-fits them)."""
    report = CompensationReport()
    probes = _collect_probes(model, analysis, data, report, leave)
    offsets = []
    for probe, delta in zip(probes, responses(model, probes)):
        node = analysis.index.nodes[probe.node.name]
        if delta is None:
            report.skipped[node.name] = "not affine in the compensated input"
            continue
        offsets.append((node, delta))
        report.compensated.append(node.name)
    added = add_offsets(model, analysis, offsets, fold_bias=fold_bias, fold_batchnorm=fold_batchnorm)
    report.approximate, report.into_bias = added.approximate, added.into_bias
    log.info("%s", report.summary_line())
    return report
