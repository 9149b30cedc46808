"""The Python API: ``inspect``, ``plan``, ``apply``, ``prune``, ``sensitivity``, ``fold``, ``validate``,
``profile``.

Each function mirrors the CLI command of the same name and returns a result object with
``summary_lines()`` (what the CLI prints) and ``to_dict()`` (what ``--json``/``--report``
write). Inputs may be paths or ``onnx.ModelProto`` objects; a ModelProto passed in is never
modified.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace

import numpy as np
import onnx

from .analysis.builder import analyze
from .analysis.types import Analysis
from .calibration.collect import DEFAULT_CALIB_SAMPLES, calibration_feeds
from .compensation import compensate as _compensate
from .compensation import compensation_data, data_from_dict, data_to_dict
from .core import as_model, count_params, prepare
from .errors import GraphPruneError, PruningError, UsageError, ValidationFailed
from .graph import GraphIndex
from .importance import DATA_DRIVEN
from .oracle import zero_removed
from .planning.config import check_fraction, load_overrides
from .planning.cost import Cost
from .planning.options import PlanOptions
from .planning.pipeline import (check_calibration, cost_model, latency_probe, make_scorer, model_cost,
                                needs_calibration, run_calibration)
from .planning.plan_file import PruningPlan, group_entries, masks, model_fingerprint, removed_from_kept
from .planning.planner import Decision, Planner
from .planning.sensitivity import DEFAULT_RATIOS, SensitivityResult
from .planning.sensitivity import sensitivity as _sensitivity
from .safety import run_checker
from .surgery.apply import apply_removal

log = logging.getLogger(__name__)

#: the pruned model must match its oracle (the original with removed channels' consumers zeroed)
#: to this tolerance: dropping zero terms only changes float summation order
ORACLE_RTOL, ORACLE_ATOL = 1e-4, 1e-5
#: ... or, output by output, to this fraction of the output's largest magnitude (max |c - r| / max |r|):
#: in a deep network the summation-order noise of float32 grows with the activations (a 100-layer
#: detector on random inputs reaches ~1e-5 of its output scale), while a wrong channel shows at 1e-2
ORACLE_SCALE_RTOL = 1e-4

ModelLike = "onnx.ModelProto | str | os.PathLike"

#: calibration samples a sensitivity scan runs per variant (every group x ratio runs them all)
SENSITIVITY_SAMPLES = 8
#: random samples of a sensitivity scan without --calib
DEFAULT_RANDOM_SAMPLES = 4


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


# --------------------------------------------------------------------------- plan
@dataclass
class PlanResult:
    """What :func:`plan` decided: ``plan`` is the :class:`PruningPlan` value (JSON with ``plan.save``)."""

    plan: PruningPlan
    original: onnx.ModelProto
    model: onnx.ModelProto          # the prepared (normalized, folded) model the plan refers to
    analysis: Analysis
    decision: Decision
    options: PlanOptions
    fold: object = None
    calibration: object = None
    reference: Cost | None = None
    #: parameters/MACs of the model as given (profiled once, reused by prune's summary)
    original_cost: Cost | None = None

    @property
    def removed(self) -> dict:
        return self.decision.removed

    @property
    def skipped(self) -> dict:
        return self.decision.skipped

    def masks(self, source: bool = True) -> dict:
        """initializer -> {axis: kept indices}; ``source`` names the model as given (BatchNorm included)."""
        if self.original is None and source and self.plan.fold_batchnorm:
            raise UsageError("masks of the model as given need the original model, which this plan consumed")
        return export_masks(self.original, self.analysis, self.removed, folded=self.plan.fold_batchnorm and source,
                            strict_initializer_inputs=self.plan.strict_initializer_inputs)

    def summary_lines(self) -> list[str]:
        lines = self.fold.summary_lines()[:1] if self.fold is not None else []
        lines += _decision_lines(self.analysis, self.decision, self.options)
        pred = self.plan.predicted
        for key, label in (("params", "parameters"), ("macs", "MACs")):
            entry = pred.get(key) or {}
            if entry.get("after") is not None and entry.get("before"):
                lines.append(f"predicted {label}: {entry['before']:,} -> {entry['after']:,} "
                             f"({_pct(entry['after'], entry['before'])})")
        if self.calibration is not None:
            lines.append(f"calibration: {self.calibration.samples} samples, {len(self.calibration.spaces)} "
                         "activations measured")
        comp = self.plan.compensation
        if comp:
            channels = sum(len(s["positions"]) for s in comp.get("spaces", ()))
            lines.append(f"compensation: calibration means of {channels} removed channels in "
                         f"{len(comp.get('spaces', ()))} activations (applied with the plan)")
        lines += [f"note: {n}" for n in self.decision.notes]
        return lines

    def to_dict(self) -> dict:
        return self.plan.to_dict()


def _decision_lines(analysis: Analysis, decision: Decision, options: PlanOptions) -> list[str]:
    return _group_lines(analysis, decision.removed, decision.skipped, _how(options, decision), options.importance)


def _group_lines(analysis: Analysis, removed: dict, skipped: dict, how: str, importance: str) -> list[str]:
    """What happened to the groups: counts, slots removed, and why the blocked ones were kept."""
    pruned = sum(1 for v in removed.values() if len(v))
    total = sum(g.n_slots for g in analysis.prunable_groups)
    lines = [f"groups: {len(analysis.groups)} total, {pruned} pruned, {len(analysis.blocked_groups)} blocked"
             + (f", {len(skipped)} excluded" if skipped else "")]
    lines.append(f"slots removed: {sum(len(v) for v in removed.values()):,} of {total:,} prunable ({how}, "
                 f"importance {importance})")
    reasons: dict[str, int] = {}
    for group in analysis.blocked_groups:
        # the interface is the most telling reason; then the op reasons, alphabetically
        first = min({b.reason for b in group.barriers}, key=lambda r: ("is a graph " not in r, r))
        reasons[first] = reasons.get(first, 0) + 1
    if reasons:
        top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
        text = "; ".join(f"{r} ({n})" if n > 1 else r for r, n in top[:3])
        more = f"; +{len(top) - 3} more reasons" if len(top) > 3 else ""
        lines.append(f"kept whole: {text}{more} (graphprune inspect lists every group)")
    return lines


def _how(options: PlanOptions, decision: Decision) -> str:
    mode = "global ranking" if options.global_rank else "ratio"
    target = options.target
    if target is None:
        return f"{mode} {options.ratio:g}" if options.global_rank else f"ratio {options.ratio:g}"
    kind, value = target
    label = {"macs": "MACs", "params": "parameters", "latency": "latency"}[kind]
    per = "of all slots" if options.global_rank else "per group"
    return f"target {label} {value:g}: {mode} t={decision.t:.4f} {per}"


def _own(model, owned: bool) -> onnx.ModelProto:
    """The caller's ModelProto itself when it hands it over (``owned``: never read again by the
    caller, saves a full copy of the weights), else a private copy (paths are loaded)."""
    return model if owned and isinstance(model, onnx.ModelProto) else as_model(model)


def _prepare_for_pruning(original: onnx.ModelProto, keep_bn: bool, strict: bool, copy: bool = True):
    m = prepare(as_model(original) if copy else original)
    fold_result = None
    if not keep_bn:
        from .passes.fold import fold as _fold
        fold_result = _fold(m)
        m = fold_result.model
    return m, analyze(GraphIndex(m, strict_initializer_inputs=strict)), fold_result


def plan(model, *, ratio: float = 0.3, importance: str = "l2", aggregate: str = "sum", global_rank: bool = False,
         normalize: str = "mean", round_to: int = 1, min_channels: int = 1, max_ratio: float = 1.0, exclude=(),
         overrides=(), config=None, target_macs: float | None = None, target_params: float | None = None,
         target_latency: float | None = None, calib=None, calib_samples: int | None = DEFAULT_CALIB_SAMPLES,
         compensate: bool | None = None, refit: bool = False, keep_bn: bool = False, input_shapes=None,
         seed: int = 0, strict_initializer_inputs: bool = False, image_options=None, progress: bool = False,
         latency_threads: int = 1, label: str | None = None, _owned: bool = False,
         _consume: bool = False) -> PlanResult:
    """Decide which slots to remove (see :class:`~graphprune.planning.options.PlanOptions` for the options).

    ``calib`` (a path, arrays or feeds) is needed by the data-driven criteria and by
    ``compensate`` (on by default for data-driven criteria) and ``refit`` (least-squares
    reconstruction of the removed channels from the kept ones, folded into the consumers'
    weights; implies ``compensate``). ``config`` is a file of per-node
    overrides (``overrides`` takes :class:`~graphprune.planning.config.Override` objects).
    """
    if config is not None:
        overrides = tuple(overrides) + load_overrides(config)
    options = PlanOptions(ratio=ratio, importance=importance, aggregate=aggregate, global_rank=global_rank,
                          normalize=normalize, round_to=round_to, min_channels=min_channels, max_ratio=max_ratio,
                          exclude=tuple(exclude), overrides=tuple(overrides), target_macs=target_macs,
                          target_params=target_params, target_latency=target_latency, seed=seed)
    compensate = options.importance in DATA_DRIVEN if compensate is None else bool(compensate)
    if refit and compensate is False and options.importance not in DATA_DRIVEN and calib is None:
        raise UsageError("--refit needs calibration data: give it with --calib PATH")
    compensate = compensate or bool(refit)
    check_calibration(options, calib, compensate)
    original = _own(model, _owned)
    # consume: prune the handed-over model itself (no working copy) when nothing later needs the
    # original: no calibration against it, no BatchNorm scores read before folding
    consume = (_consume and _owned and original is model and options.importance != "bn-scale"
               and not needs_calibration(options, compensate))
    fingerprint = model_fingerprint(original) if consume else None
    original_cost = _safe_cost(original, input_shapes) if consume else None
    m, analysis, fold_result = _prepare_for_pruning(original, keep_bn, strict_initializer_inputs, copy=not consume)
    if consume:
        original = None
    stats = None
    if calib is not None and needs_calibration(options, compensate):
        stats = run_calibration(m, analysis, calib, reference_model=original, samples=calib_samples,
                                image_options=image_options, progress=progress, gram=bool(refit))
    unfolded = prepare(as_model(original)) if options.importance == "bn-scale" and not keep_bn else None
    scorer = make_scorer(options, analysis, stats=stats, unfolded=unfolded,
                         strict_initializer_inputs=strict_initializer_inputs)
    costs = cost_model(m, analysis, input_shapes)
    if costs is None:
        reference = None
    else:
        reference = original_cost if consume else model_cost(original, input_shapes)
    latency = None
    if options.target_latency is not None:
        latency = latency_probe(m, input_shapes, threads=latency_threads, progress=progress,
                                strict_initializer_inputs=strict_initializer_inputs)
    decision = Planner(analysis, scorer, options, cost_model=costs, reference=reference).decide(latency=latency)
    comp = (data_to_dict(compensation_data(analysis, decision.removed, stats, refit=bool(refit)))
            if compensate and stats else None)
    predicted = {"t": decision.t}
    if reference is not None and decision.predicted is not None:
        predicted.update(params={"before": reference.params, "after": decision.predicted.params},
                         macs={"before": reference.macs, "after": decision.predicted.macs})
    extra = {"calibration": {"source": stats.source, "samples": stats.samples}} if stats is not None else {}
    the_plan = PruningPlan(fingerprint or model_fingerprint(original), label or _label(model), not keep_bn,
                           group_entries(analysis, decision.removed, decision.skipped),
                           {**options.to_dict(), "how": _how(options, decision), "compensate": compensate,
                            "refit": bool(refit), **extra,
                            **({"search": decision.search} if decision.search else {})},
                           predicted, comp, tuple(decision.notes), strict_initializer_inputs)
    return PlanResult(the_plan, original, m, analysis, decision, options, fold_result, stats, reference,
                      original_cost or reference)


def export_masks(original: onnx.ModelProto, analysis: Analysis, removed: dict, *, folded: bool,
                 strict_initializer_inputs: bool = False) -> dict:
    """Kept indices per initializer axis; with ``folded``, of the model as given (BatchNorm included)."""
    if not folded:
        return masks(analysis, removed)
    from .surgery.apply import kept_positions

    source = prepare(as_model(original))
    source_analysis = analyze(GraphIndex(source, strict_initializer_inputs=strict_initializer_inputs))
    carried, _ = removed_from_kept(source_analysis, kept_positions(analysis, removed), strict=False)
    return masks(source_analysis, carried)


# --------------------------------------------------------------------------- apply / prune
@dataclass
class PruneResult:
    """What :func:`prune` or :func:`apply` did; ``model`` is the pruned ModelProto."""

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
    plan: PruningPlan | None = None
    compensation: object = None
    notes: list = field(default_factory=list)
    how: str = ""

    @property
    def groups_pruned(self) -> int:
        return sum(1 for v in self.removed.values() if len(v))

    def summary_lines(self) -> list[str]:
        a = self.analysis
        lines = []
        if self.fold is not None:
            lines += self.fold.summary_lines()[:1]
        lines += _group_lines(a, self.removed, self.skipped, self.how or f"ratio {self.ratio:g}", self.importance)
        lines.append(f"parameters: {self.params_before:,} -> {self.params_after:,} "
                     f"({_pct(self.params_after, self.params_before)})")
        if self.macs_before is not None and self.macs_after is not None:
            lines.append(f"MACs:       {self.macs_before:,} -> {self.macs_after:,} "
                         f"({_pct(self.macs_after, self.macs_before)})")
        if self.compensation is not None:
            lines.append(self.compensation.summary_line())
        if self.oracle is not None:
            worst = max((o.max_abs for o in self.oracle.outputs), default=0.0)
            lines.append(f"exactness: pruned model equals its oracle (max abs diff {worst:.3g}, "
                         f"{self.oracle.samples} samples)" if self.oracle.passed else
                         "exactness: FAILED (pruned model differs from its oracle)")
        if self.drift is not None:
            lines.append("drift vs original: " + _drift_text(self.drift))
        lines += [f"note: {n}" for n in self.notes]
        return lines

    def to_dict(self) -> dict:
        return {
            "ratio": self.ratio, "importance": self.importance, "how": self.how,
            "groups": {"total": len(self.analysis.groups), "pruned": self.groups_pruned,
                       "blocked": len(self.analysis.blocked_groups),
                       "excluded": {str(k): v for k, v in self.skipped.items()}},
            "removed_slots": {str(k): [int(s) for s in v] for k, v in self.removed.items()},
            "parameters": {"before": self.params_before, "after": self.params_after},
            "macs": {"before": self.macs_before, "after": self.macs_after},
            "predicted": self.plan.predicted if self.plan is not None else None,
            "compensation": self.compensation.to_dict() if self.compensation is not None else None,
            "fold": self.fold.to_dict() if self.fold is not None else None,
            "oracle": self.oracle.to_dict() if self.oracle is not None else None,
            "drift": self.drift.to_dict() if self.drift is not None else None,
            "notes": list(self.notes),
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


def _safe_cost(model: onnx.ModelProto | None, input_shapes=None) -> Cost | None:
    """Parameters and MACs by the profiler, or None (with a warning) when it cannot count them."""
    try:
        return model_cost(model, input_shapes)
    except Exception as exc:  # noqa: BLE001 - counts are informative; never fail a prune on them
        log.warning("MAC count unavailable: %s", exc)
        return None


def _macs(model: onnx.ModelProto | None, input_shapes=None) -> int | None:
    cost = _safe_cost(model, input_shapes)
    return None if cost is None else cost.macs


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


def _compensated(m: onnx.ModelProto, analysis: Analysis, removed: dict, the_plan: PruningPlan):
    """Fold the plan's compensation into ``m``; returns (report, new analysis, removed slots in it)."""
    from .surgery.apply import kept_positions

    data = data_from_dict(the_plan.compensation)
    if not data or not removed:
        return None, analysis, removed
    before = kept_positions(analysis, removed)
    report = _compensate(m, analysis, data, fold_batchnorm=the_plan.fold_batchnorm)
    new = analyze(GraphIndex(m, strict_initializer_inputs=the_plan.strict_initializer_inputs))
    moved, _ = removed_from_kept(new, before, strict=False)
    after = kept_positions(new, moved)
    lost = [s for s in before if s in after and not np.array_equal(before[s], after[s])]
    if lost or sum(len(v) for v in moved.values()) != sum(len(v) for v in removed.values()):
        raise PruningError("internal error: compensation changed the channel groups "
                           f"({', '.join(map(str, lost[:3])) or 'slot counts differ'}); nothing was written")
    return report, new, moved


def apply(model, the_plan: PruningPlan | str | os.PathLike, *, validate: bool = True, data=None,
          samples: int | None = None, input_shapes=None, seed: int = 0, count_macs: bool = True,
          progress: bool = False, image_options=None, label: str | None = None, _prepared=None,
          _owned: bool = False, _before: tuple | None = None) -> PruneResult:
    """Apply a plan (a :class:`PruningPlan` or a plan file) to ``model``, the model it was made for.

    Refuses (:class:`~graphprune.errors.DataError`, exit 3) a plan made for another model. With
    ``validate`` the result is checked against its oracle and compared with the original.
    """
    if not isinstance(the_plan, PruningPlan):
        the_plan = PruningPlan.load(the_plan)
    original = None if model is None else _own(model, _owned)
    if _prepared is None:
        the_plan.check_model(model_fingerprint(original), label or _label(model))
        m, analysis, fold_result = _prepare_for_pruning(original, not the_plan.fold_batchnorm,
                                                        the_plan.strict_initializer_inputs)
    else:
        m, analysis, fold_result = _prepared
    removed, notes = removed_from_kept(analysis, the_plan.kept(), the_plan.sizes())
    compensation, analysis, removed = _compensated(m, analysis, removed, the_plan)
    reference = zero_removed(m, analysis, removed) if validate else None
    given_params, given_macs = _before or (None, None)
    params_before = count_params(original) if given_params is None else given_params
    changed = apply_removal(m, analysis, removed)
    try:
        run_checker(m, "pruned model")
    except GraphPruneError as exc:
        raise PruningError(f"internal error: the pruned model fails the ONNX checker ({exc}); "
                           "nothing was written") from exc
    opts = the_plan.options
    result = PruneResult(m, analysis, removed, _skipped(the_plan), float(opts.get("ratio", 0.0)),
                         str(opts.get("importance", "plan")), params_before, count_params(m), fold=fold_result,
                         layers=layer_channels(analysis, changed), plan=the_plan, compensation=compensation,
                         notes=notes + list(the_plan.notes), how=str(opts.get("how", "")))
    if count_macs:
        result.macs_before = _macs(original, input_shapes) if given_macs is None else given_macs
        result.macs_after = _macs(m, input_shapes)
    if validate:
        _validate_result(result, original, reference, data=data, samples=samples, input_shapes=input_shapes,
                         seed=seed, progress=progress, image_options=image_options)
    return result


def _skipped(the_plan: PruningPlan) -> dict:
    return {int(g["id"]): g.get("reason", "excluded") for g in the_plan.groups if g.get("status") == "excluded"}


def _validate_result(result: PruneResult, original, reference, **kwargs) -> None:
    from .validation import validate as _validate

    result.oracle = _scale_checked(_validate(reference, result.model, samples=kwargs["samples"] or 2,
                                             input_shapes=kwargs["input_shapes"], seed=kwargs["seed"],
                                             rtol=ORACLE_RTOL, atol=ORACLE_ATOL, progress=kwargs["progress"]))
    if not result.oracle.passed:
        raise ValidationFailed("internal consistency check failed: the pruned model does not compute what the "
                               "original computes without the removed channels; nothing was written "
                               "(please report this model)")
    result.drift = _validate(original, result.model, **kwargs)


def _scale_checked(report):
    """The oracle report, passed when every output is within ORACLE_SCALE_RTOL of its scale."""
    if report.passed or not report.outputs:
        return report
    if all(o.problem is None and o.max_rel <= ORACLE_SCALE_RTOL for o in report.outputs):
        worst = max(o.max_rel for o in report.outputs)
        return replace(report, passed=True, notes=tuple(report.notes) + (
            f"within {ORACLE_SCALE_RTOL:g} of each output's scale (worst {worst:.2g}): float summation order",))
    return report


def prune(model, *, ratio: float = 0.3, importance: str = "l2", exclude=(), keep_bn: bool = False,
          validate: bool = True, data=None, samples: int | None = None, input_shapes=None, seed: int = 0,
          strict_initializer_inputs: bool = False, count_macs: bool = True, progress: bool = False,
          image_options=None, _owned: bool = False, _consume: bool = False, **plan_options) -> PruneResult:
    """Plan and apply in one go: remove the least important slots of ``model``.

    Stages: normalize, fold BatchNorm (unless ``keep_bn``), analyze, [calibrate], score, plan,
    [compensate], apply. ``plan_options`` are those of :func:`plan` (``global_rank``,
    ``target_macs``, ``calib``, ``compensate``...). With ``validate`` the pruned model is checked
    against its oracle (must match: raises :class:`ValidationFailed` otherwise) and compared with
    the original (drift, informative).
    """
    consume = _consume and _owned and not validate and isinstance(model, onnx.ModelProto)
    params_first = count_params(model) if consume else None  # before the model is consumed
    planned = plan(model, ratio=ratio, importance=importance, exclude=exclude, keep_bn=keep_bn,
                   input_shapes=input_shapes, seed=seed, strict_initializer_inputs=strict_initializer_inputs,
                   image_options=image_options, progress=progress, _owned=_owned, _consume=consume, **plan_options)
    result = apply(planned.original, planned.plan, validate=validate, data=data, samples=samples,
                   input_shapes=input_shapes, seed=seed, count_macs=count_macs, progress=progress,
                   image_options=image_options, _prepared=(planned.model, planned.analysis, planned.fold),
                   _owned=True, _before=(params_first, planned.original_cost.macs if planned.original_cost else None))
    result.ratio = planned.decision.t
    result.how = _how(planned.options, planned.decision)
    result.notes = list(planned.decision.notes) + [n for n in result.notes if n not in planned.decision.notes]
    return result


# --------------------------------------------------------------------------- sensitivity
def sensitivity(model, *, ratios=DEFAULT_RATIOS, importance: str = "l2", aggregate: str = "sum", calib=None,
                calib_samples: int | None = SENSITIVITY_SAMPLES, samples: int = DEFAULT_RANDOM_SAMPLES,
                keep_bn: bool = False, input_shapes=None, seed: int = 0, strict_initializer_inputs: bool = False,
                image_options=None, progress: bool = False) -> SensitivityResult:
    """Output drift when each prunable group alone loses each fraction in ``ratios`` of its slots.

    Inputs are the first ``calib_samples`` of ``calib`` or ``samples`` seeded random feeds; the
    data-driven criteria need ``calib``.
    """
    ratios = tuple(check_fraction("ratio", r) for r in ratios)
    if not ratios:
        raise UsageError("give at least one ratio")
    options = PlanOptions(importance=importance, aggregate=aggregate, seed=seed)
    check_calibration(options, calib, False)
    original = as_model(model)
    m, analysis, _ = _prepare_for_pruning(original, keep_bn, strict_initializer_inputs)
    stats = None
    if importance in DATA_DRIVEN:
        stats = run_calibration(m, analysis, calib, reference_model=original, samples=calib_samples,
                                image_options=image_options, progress=progress)
    unfolded = prepare(as_model(original)) if importance == "bn-scale" and not keep_bn else None
    scorer = make_scorer(options, analysis, stats=stats, unfolded=unfolded,
                         strict_initializer_inputs=strict_initializer_inputs)
    if calib is not None:
        feeds = list(calibration_feeds(calib, original, limit=calib_samples, image_options=image_options))
        source = str(calib) if isinstance(calib, (str, os.PathLike)) else "arrays"
    else:
        from .validation.feeds import make_feeds
        feeds = make_feeds(original, samples, seed=seed, input_shapes=input_shapes)
        source = f"seeded random inputs (seed {seed})"
    return _sensitivity(m, analysis, scorer, feeds, ratios=ratios, source=source, progress=progress)


# re-exported mirrors of the other commands
def fold(model, **kwargs):
    """Fold BatchNormalization and per-channel affines (see :func:`graphprune.passes.fold.fold`)."""
    from .passes.fold import fold as _fold
    return _fold(as_model(model), **kwargs)


def validate(reference, candidate, **kwargs):
    """Compare two models in onnxruntime (see :func:`graphprune.validation.validate`)."""
    from .validation import validate as _validate
    return _validate(reference, candidate, **kwargs)


def profile(model, **kwargs):
    """Parameters, MACs, activation memory and latency (see :func:`graphprune.profiling.profile`)."""
    from .profiling import profile as _profile
    return _profile(model, **kwargs)
