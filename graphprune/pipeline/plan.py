"""A decision as a :class:`PruningPlan` (to write with ``plan``) and back (to ``apply`` one).

Only these two directions meet plan files: ``prune`` hands its decision straight to ``apply``.

Repairs: the ``mean``/``refit`` data (calibration means, reconstruction matrices) is small and
travels in the plan. ``sequential`` and ``statistics`` measure the pruned model itself, layer after
layer, so what they compute exists only once the plan is applied: the plan records their names and
the SHA-256 of the calibration samples, and ``apply`` needs the same samples (``--calib``), checks
them against that hash and runs the same repair, so that plan + apply gives the bytes prune gives.
"""
from __future__ import annotations

from dataclasses import replace

from ..compensation import data_from_dict, data_to_dict
from ..errors import DataError, UsageError
from ..planning.plan_file import PruningPlan, group_entries, removed_from_kept
from ..vocabulary import DATA_REPAIRS
from .options import Options
from .values import Analyzed, Decided


def predicted(decided: Decided) -> dict:
    """The searched fraction and the predicted parameters and MACs before/after."""
    decision = decided.decision
    out = {"t": decision.t}
    if decided.reference is not None and decision.predicted is not None:
        out.update(params={"before": decided.reference.params, "after": decision.predicted.params},
                   macs={"before": decided.reference.macs, "after": decision.predicted.macs})
    return out


def to_plan(decided: Decided, options: Options, split=None) -> PruningPlan:
    """The plan file of ``decided``; ``split`` (the calibration samples) when a repair runs at apply time."""
    analyzed = decided.scored.analyzed
    source, analysis, decision = analyzed.prepared.source, analyzed.analysis, decided.decision
    stats = decided.scored.stats
    extra = {"calibration": {"source": stats.source, "samples": stats.samples}} if stats is not None else {}
    if DATA_REPAIRS & set(options.repair) and split is not None:
        extra["repair"] = repair_record(options, split)
    recorded = {**options.plan_options.to_dict(), "how": decided.how, "compensate": options.mean_repair is not None,
                "refit": options.mean_repair == "refit", **extra,
                **({"search": decision.search} if decision.search else {})}
    comp = data_to_dict(list(decided.compensation)) if decided.compensation else None
    return PruningPlan(source.fingerprint, options.label or source.label, not options.keep_bn,
                       group_entries(analysis, decision.removed, decision.skipped), recorded, predicted(decided), comp,
                       tuple(decision.notes), options.strict_initializer_inputs)


def repair_record(options: Options, split) -> dict:
    """The repairs a plan's ``apply`` must run, and the calibration samples they need (by hash)."""
    from ..calibration import fingerprint
    from .feeds import calibration_label

    digest, count = fingerprint(split.calibration())
    return {"methods": list(options.repair),
            "calibration": {"source": calibration_label(options), "samples": count, "sha256": digest,
                            "eval_split": split.eval_split, "seed": split.seed}}


def plan_options(plan: PruningPlan, options: Options) -> Options:
    """``options`` with what the plan fixes: how the model is prepared and which repairs run. The
    mean/refit data comes from the plan; the sequential and statistics repairs need ``options.calib``
    to be the plan's calibration samples (a usage error without it, a data error for other samples):
    the same held-out split (the plan's eval split and seed) gives the same calibration samples."""
    record = plan.options.get("repair") or {}
    methods = tuple(record.get("methods", ())) if DATA_REPAIRS & set(record.get("methods", ())) else ()
    calib = record.get("calibration") or {}
    if methods and options.calib is None:
        raise UsageError(f"this plan's repair ({', '.join(methods)}) measures the pruned model: apply needs the "
                         f"calibration data the plan was made with ({calib.get('source', '?')}, "
                         f"{calib.get('samples', '?')} samples): give it with --calib PATH")
    fixed = dict(keep_bn=not plan.fold_batchnorm, strict_initializer_inputs=plan.strict_initializer_inputs,
                 repair=methods, compensate=None, refit=False)
    if methods:
        fixed.update(calib_samples=int(calib.get("samples", 0)) or options.calib_samples,
                     eval_split=calib.get("eval_split", options.eval_split), seed=int(calib.get("seed", options.seed)))
    else:
        fixed.update(calib=None, tokenizer=None)
    return replace(options, **fixed)


def check_repair_data(plan: PruningPlan, split) -> None:
    """The calibration samples given to ``apply`` (``split``'s) must be the plan's (same SHA-256)."""
    from ..calibration import fingerprint

    expected = ((plan.options.get("repair") or {}).get("calibration") or {}).get("sha256")
    if not expected or split is None or split.calib is None:
        return
    digest, count = fingerprint(split.calibration())
    if digest != expected:
        raise DataError(f"the calibration data given ({count} samples, sha256 {digest[:12]}...) is not the data "
                        f"the plan was made with (sha256 {expected[:12]}...): the repair would differ from the "
                        "planned one; give the same data and preprocessing options, or make a new plan")


def from_plan(analyzed: Analyzed, plan: PruningPlan) -> tuple[dict, list[str], tuple]:
    """(removed slots, notes on expanded edits, compensation data) of ``plan`` on ``analyzed``."""
    removed, notes = removed_from_kept(analyzed.analysis, plan.kept(), plan.sizes())
    return removed, notes, tuple(data_from_dict(plan.compensation))


def skipped_groups(plan: PruningPlan) -> dict:
    return {int(g["id"]): g.get("reason", "excluded") for g in plan.groups if g.get("status") == "excluded"}
