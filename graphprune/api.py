"""The Python API: one function per CLI command, each a thin wrapper over the pipeline.

Keyword options are those of :class:`graphprune.pipeline.Options` (the CLI flags, with ``_``
for ``-``); every function returns a result object with ``summary_lines()`` (what the CLI
prints) and ``to_dict()`` (what ``--json``/``--report`` write). Models may be paths or
``onnx.ModelProto`` objects; a ModelProto passed in is never modified.
"""
from __future__ import annotations

from .errors import UsageError
from .pipeline import compose
from .pipeline.options import Options
from .vocabulary import DEFAULT_RANDOM_SAMPLES, DEFAULT_RATIOS, SENSITIVITY_SAMPLES


def inspect(model, **options):
    """Dependency groups of ``model``: their slots, members and barrier reasons."""
    return compose.inspect(model, Options.of(**options))


def plan(model, **options):
    """Decide which slots to remove; ``result.plan`` is the PruningPlan (``.save(path)`` writes it)."""
    return compose.plan(model, Options.of(**options))


def prune(model, **options):
    """Remove the least important slots of ``model``: fold, analyze, score, decide, apply, check.

    With ``validate`` (default) the result must match its oracle (else ValidationFailed) and its
    drift from the original is measured; ``result.model`` is the pruned ModelProto.

    Drift budget: ``max_drift=D`` (with ``metric=`` "cosine", "top1" or "rel") and no ``ratio`` or
    target searches the per-group ratios that remove the most of ``objective`` ("macs",
    "params", "latency") while the drift on held-out samples stays within D (``calib=`` is
    needed: ``eval_split`` of it is held out); with a ``ratio`` or target it is a gate. A result
    that misses D raises :class:`graphprune.errors.DriftBudgetExceeded` (its ``result`` says by
    how much). ``jobs`` worker processes calibrate shards and measure the candidates; ``executor="ray"``
    runs them on a Ray cluster (``ray_address=``, else RAY_ADDRESS, else a local Ray), and an
    :class:`~graphprune.execution.executor.Executor` instance replaces them (the caller closes it).
    """
    return compose.prune(model, Options.of(**options))


def apply(model, the_plan, **options):
    """Apply a plan (a PruningPlan or a plan file) to ``model``, the model it was made for."""
    from .planning.plan_file import PruningPlan

    if not isinstance(the_plan, PruningPlan):
        the_plan = PruningPlan.load(the_plan)
    # the plan decides what goes: ``max_drift`` is a gate here, never a search
    return compose.apply_plan(model, the_plan, Options.of(search=False, **options))


def sensitivity(model, *, ratios=DEFAULT_RATIOS, samples: int = DEFAULT_RANDOM_SAMPLES,
                calib_samples: int | None = SENSITIVITY_SAMPLES, metric: str = "rel", **options):
    """Output drift when each prunable group alone loses each fraction in ``ratios`` of its slots
    (``metric``: "rel" relative L2 error, "cosine" or "top1"; see graphprune.validation.drift)."""
    from .validation.drift import check_metric

    check_metric(metric)
    from .planning.config import check_fraction

    ratios = tuple(check_fraction("ratio", r) for r in ratios)
    if not ratios:
        raise UsageError("give at least one ratio")
    return compose.sensitivity(model, Options.of(calib_samples=calib_samples, validate=False, **options), ratios,
                               samples, metric)


def export_masks(result, *, source: bool = True) -> dict:
    """initializer -> {axis: kept indices} of a plan or prune result (names of the model as given)."""
    from .pipeline.masks import export_masks as masks_of

    folded = not getattr(result, "options", None) or not result.options.keep_bn
    src = result.source if hasattr(result, "source") and result.source is not None else \
        result.decided.scored.analyzed.prepared.source
    return masks_of(src, result.analysis, result.removed, folded=folded and source)


def fold(model, **kwargs):
    """Fold BatchNormalization and per-channel affines (see :func:`graphprune.passes.fold.fold`)."""
    from .passes.fold import fold as fold_graph
    from .pipeline.load import load

    return fold_graph(load(model).editable(), **kwargs)


def validate(reference, candidate, **kwargs):
    """Compare two models in onnxruntime (see :func:`graphprune.validation.validate`)."""
    from .validation import validate as validate_models

    return validate_models(reference, candidate, **kwargs)


def profile(model, **kwargs):
    """Parameters, MACs, activation memory and latency (see :func:`graphprune.profiling.profile`)."""
    from .profiling import profile as profile_model

    return profile_model(model, **kwargs)


__all__ = ["inspect", "plan", "prune", "apply", "sensitivity", "export_masks", "fold", "validate", "profile"]
