"""The Python API: ``inspect``, ``prune``, ``fold``, ``validate``, ``profile``.

Each function mirrors the CLI command of the same name and returns a result object with
``summary_lines()`` (what the CLI prints) and ``to_dict()`` (what ``--json``/``--report``
write). Inputs may be paths or ``onnx.ModelProto`` objects; a ModelProto passed in is never
modified.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np
import onnx

from .analysis.builder import analyze
from .analysis.types import Analysis
from .core import as_model, count_params, decide, prepare
from .errors import PruningError, ValidationFailed
from .graph import GraphIndex
from .oracle import zero_removed
from .surgery.apply import apply_removal

log = logging.getLogger(__name__)

#: the pruned model must match its oracle (the original with removed channels' consumers zeroed)
#: to this tolerance: dropping zero terms only changes float summation order
ORACLE_RTOL, ORACLE_ATOL = 1e-4, 1e-5

ModelLike = "onnx.ModelProto | str | os.PathLike"


# --------------------------------------------------------------------------- inspect
@dataclass
class InspectResult:
    model_name: str
    analysis: Analysis
    nodes: int
    params: int

    @property
    def groups(self):
        return self.analysis.groups

    def to_dict(self) -> dict:
        a = self.analysis
        reasons: dict[str, int] = {}
        for g in a.blocked_groups:
            for r in {b.reason for b in g.barriers}:
                reasons[r] = reasons.get(r, 0) + 1
        return {
            "model": self.model_name,
            "nodes": self.nodes,
            "parameters": self.params,
            "groups": len(a.groups),
            "prunable_groups": len(a.prunable_groups),
            "blocked_groups": len(a.blocked_groups),
            "prunable_slots": sum(g.n_slots for g in a.prunable_groups),
            "barrier_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
            "unknown_ops": a.unknown_nodes,
            "group_list": [g.to_dict() for g in a.groups],
        }

    def summary_lines(self, show_all: bool = False, limit: int = 40) -> list[str]:
        a = self.analysis
        lines = [f"{self.model_name}: {self.nodes} nodes, {self.params:,} parameters",
                 f"groups: {len(a.groups)} ({len(a.prunable_groups)} prunable, {len(a.blocked_groups)} blocked), "
                 f"{sum(g.n_slots for g in a.prunable_groups):,} prunable slots"]
        lines.append(f"{'group':>5}  {'slots':>6}  {'spaces':>6}  {'status':<9} first parameter / reason")
        shown = a.groups if show_all else a.groups[:limit]
        for g in shown:
            status = "prunable" if g.prunable else ("blocked" if g.blocked else "single")
            detail = str(g.representative)
            if g.blocked:
                detail += ": " + "; ".join(sorted({b.reason for b in g.barriers})[:2])
                extra = len({b.reason for b in g.barriers}) - 2
                if extra > 0:
                    detail += f" (+{extra} more)"
            lines.append(f"{g.id:>5}  {g.n_slots:>6}  {len(g.spaces):>6}  {status:<9} {detail}")
        if len(shown) < len(a.groups):
            lines.append(f"  ... {len(a.groups) - len(shown)} more groups (--all to list them, --json for data)")
        if a.unknown_nodes:
            lines.append(f"nodes without a rule ({len(a.unknown_nodes)}): "
                         + ", ".join(sorted(a.unknown_nodes)[:8]) + (" ..." if len(a.unknown_nodes) > 8 else ""))
        return lines


def _label(model) -> str:
    return os.path.basename(str(model)) if not isinstance(model, onnx.ModelProto) else (model.graph.name or "model")


def inspect(model, *, strict_initializer_inputs: bool = False) -> InspectResult:
    """Dependency groups of ``model``: their slots, members and barrier reasons."""
    m = prepare(as_model(model))
    analysis = analyze(GraphIndex(m, strict_initializer_inputs=strict_initializer_inputs))
    return InspectResult(_label(model), analysis, len(m.graph.node), count_params(m))


# --------------------------------------------------------------------------- prune
@dataclass
class PruneResult:
    """What :func:`prune` did; ``model`` is the pruned ModelProto."""

    model: onnx.ModelProto
    analysis: Analysis
    removed: dict
    skipped: dict
    ratio: float
    importance: str
    params_before: int
    params_after: int
    macs_before: int | None = None
    macs_after: int | None = None
    fold: object = None
    oracle: object = None
    drift: object = None
    layers: list = field(default_factory=list)

    @property
    def groups_pruned(self) -> int:
        return sum(1 for v in self.removed.values() if len(v))

    def summary_lines(self) -> list[str]:
        a = self.analysis
        lines = []
        if self.fold is not None:
            lines += self.fold.summary_lines()[:1]
        removed_slots = sum(len(v) for v in self.removed.values())
        total_slots = sum(g.n_slots for g in a.prunable_groups)
        lines.append(f"groups: {len(a.groups)} total, {self.groups_pruned} pruned, {len(a.blocked_groups)} blocked"
                     + (f", {len(self.skipped)} excluded" if self.skipped else ""))
        lines.append(f"slots removed: {removed_slots:,} of {total_slots:,} prunable "
                     f"(ratio {self.ratio:g}, importance {self.importance})")
        lines.append(f"parameters: {self.params_before:,} -> {self.params_after:,} "
                     f"({_pct(self.params_after, self.params_before)})")
        if self.macs_before is not None and self.macs_after is not None:
            lines.append(f"MACs:       {self.macs_before:,} -> {self.macs_after:,} "
                         f"({_pct(self.macs_after, self.macs_before)})")
        if self.oracle is not None:
            worst = max((o.max_abs for o in self.oracle.outputs), default=0.0)
            lines.append(f"exactness: pruned model equals its oracle (max abs diff {worst:.3g}, "
                         f"{self.oracle.samples} samples)" if self.oracle.passed else
                         "exactness: FAILED (pruned model differs from its oracle)")
        if self.drift is not None:
            lines.append("drift vs original: " + _drift_text(self.drift))
        return lines

    def to_dict(self) -> dict:
        return {
            "ratio": self.ratio, "importance": self.importance,
            "groups": {"total": len(self.analysis.groups), "pruned": self.groups_pruned,
                       "blocked": len(self.analysis.blocked_groups),
                       "excluded": {str(k): v for k, v in self.skipped.items()}},
            "removed_slots": {str(k): [int(s) for s in v] for k, v in self.removed.items()},
            "parameters": {"before": self.params_before, "after": self.params_after},
            "macs": {"before": self.macs_before, "after": self.macs_after},
            "fold": self.fold.to_dict() if self.fold is not None else None,
            "oracle": self.oracle.to_dict() if self.oracle is not None else None,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "layers": self.layers,
        }


def _pct(after, before) -> str:
    return f"{100.0 * after / before:.1f}% kept" if before else "n/a"


def _drift_text(report) -> str:
    parts = []
    for o in report.outputs:
        text = f"{o.name}: cosine {o.cosine:.4f}"
        if getattr(o, "top1", None) is not None:
            text += f", top-1 agreement {100 * o.top1:.1f}%"
        parts.append(text)
    return "; ".join(parts[:4]) + (f" (+{len(parts) - 4} outputs)" if len(parts) > 4 else "")


def _macs(model: onnx.ModelProto, input_shapes=None) -> int | None:
    try:
        from .profiling import profile as _profile
        return int(_profile(model, input_shapes=input_shapes, progress=False).total_macs)
    except Exception as exc:  # noqa: BLE001 - MACs are informative; never fail a prune on them
        log.warning("MAC count unavailable: %s", exc)
        return None


def layer_channels(analysis: Analysis, changed: dict) -> list[dict]:
    """Output channels before/after for every node whose weight has a producer slice."""
    from .rules.base import PRODUCER

    out = []
    index = analysis.index
    for group in analysis.groups:
        for p in group.params:
            if PRODUCER not in p.roles or "weight" not in p.tags:
                continue
            for use in index.uses(p.initializer):
                node = index.nodes[use.node]
                before = group.sizes[p.space]
                after = int(changed[p.space].size) if p.space in changed else before
                out.append({"node": node.name, "op_type": node.op_type, "before": int(before), "after": after})
    out.sort(key=lambda r: index.node_pos.get(r["node"], 0))
    seen, unique = set(), []
    for r in out:
        if r["node"] not in seen:
            seen.add(r["node"])
            unique.append(r)
    return unique


def prune(model, *, ratio: float = 0.3, importance: str = "l2", exclude=(), keep_bn: bool = False,
          validate: bool = True, data=None, samples: int | None = None, input_shapes=None, seed: int = 0,
          strict_initializer_inputs: bool = False, count_macs: bool = True, progress: bool = False,
          image_options=None) -> PruneResult:
    """Remove ``ratio`` of the slots of every prunable group of ``model``.

    Stages: normalize, fold BatchNorm (unless ``keep_bn``), analyze, score, plan, apply. With
    ``validate`` the pruned model is checked against its oracle (must match: raises
    :class:`ValidationFailed` otherwise) and compared with the original (drift, informative).
    """
    original = as_model(model)
    m = as_model(original)
    prepare(m)
    fold_result = None
    if not keep_bn:
        from .passes.fold import fold as _fold
        fold_result = _fold(m)
        m = fold_result.model
    analysis = analyze(GraphIndex(m, strict_initializer_inputs=strict_initializer_inputs))
    decision = decide(analysis, ratio=ratio, importance=importance, exclude=tuple(exclude), seed=seed)
    reference = zero_removed(m, analysis, decision.removed) if validate else None
    params_before = count_params(original)
    changed = apply_removal(m, analysis, decision.removed)
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception as exc:  # noqa: BLE001
        raise PruningError(f"internal error: the pruned model fails the ONNX checker ({str(exc).splitlines()[0]}); "
                           "nothing was written") from exc
    result = PruneResult(m, analysis, decision.removed, decision.skipped, ratio, importance, params_before,
                         count_params(m), fold=fold_result, layers=layer_channels(analysis, changed))
    if count_macs:
        result.macs_before, result.macs_after = _macs(original, input_shapes), _macs(m, input_shapes)
    if validate:
        from .validate import validate as _validate
        result.oracle = _validate(reference, m, samples=samples or 2, input_shapes=input_shapes, seed=seed,
                                  rtol=ORACLE_RTOL, atol=ORACLE_ATOL, progress=progress)
        if not result.oracle.passed:
            raise ValidationFailed("internal consistency check failed: the pruned model does not compute what the "
                                   "original computes without the removed channels; nothing was written "
                                   "(please report this model)")
        result.drift = _validate(original, m, data=data, samples=samples, input_shapes=input_shapes, seed=seed,
                                 progress=progress, image_options=image_options)
    return result


def removed_as_arrays(removed: dict) -> dict:
    return {int(k): np.asarray(v, dtype=np.int64) for k, v in removed.items()}


# re-exported mirrors of the other commands
def fold(model, **kwargs):
    """Fold BatchNormalization and per-channel affines (see :func:`graphprune.passes.fold.fold`)."""
    from .passes.fold import fold as _fold
    return _fold(as_model(model), **kwargs)


def validate(reference, candidate, **kwargs):
    """Compare two models in onnxruntime (see :func:`graphprune.validate.validate`)."""
    from .validate import validate as _validate
    return _validate(reference, candidate, **kwargs)


def profile(model, **kwargs):
    """Parameters, MACs, activation memory and latency (see :func:`graphprune.profiling.profile`)."""
    from .profiling import profile as _profile
    return _profile(model, **kwargs)
