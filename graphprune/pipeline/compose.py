"""The commands as compositions of the stages.

    prune  = load ─► prepare ─► analyze ─► score ─► decide ─► apply ─► check
    plan   = load ─► prepare ─► analyze ─► score ─► decide ─► (PruningPlan)
    apply  = load ─► prepare ─► analyze ─► (PruningPlan) ─► apply ─► check
"""
from __future__ import annotations

import contextlib
from dataclasses import replace

from ..errors import DriftBudgetExceeded
from ..execution.executor import Executor, LocalExecutor
from ..vocabulary import DATA_REPAIRS
from ..planning.plan_file import PruningPlan
from .analyze import analyze
from .apply import apply as apply_stage
from .check import check, original_session
from .decide import decide
from .feeds import with_data_shapes
from .load import load
from .options import Options
from .plan import check_repair_data, from_plan, plan_options, predicted, skipped_groups, to_plan
from .prepare import prepare
from .results import InspectResult, PlanResult, PruneResult
from .score import score


def inspect(model, options: Options) -> InspectResult:
    """Dependency groups of ``model`` (normalized, not folded): slots, members, barriers."""
    from ..graph.model import to_proto
    from ..profiling.counts import count_parameters

    source = load(model)
    analyzed = analyze(prepare(source, replace(options, keep_bn=True)), options)
    model = analyzed.prepared.model  # normalized: weights computed from constants are initializers
    return InspectResult(options.label or source.label, analyzed.analysis, len(model.graph),
                         count_parameters(to_proto(model, tensors="skeleton")))


def plan(model, options: Options):
    """Decide which slots go; returns a PlanResult whose ``plan`` is the PruningPlan to write.

    With ``max_drift``, the plan is applied to a copy and checked on held-out data (a budget search
    rolls back until it fits; a gate raises :class:`DriftBudgetExceeded`)."""
    source = load(model)
    options, shapes = _resolving(source, with_data_shapes(options, source.proto))
    split = data_split(source, options)
    starting = _original_session(source, options, shapes, wanted=options.max_drift is not None)
    scored, budgeted, options = _scored_and_searched(source, split, options, shapes)
    original = starting.result()
    if budgeted is not None:
        budgeted, result = _checked_budget(source, scored, budgeted, split, options, edit_scored=False,
                                           original=original)
        return PlanResult(to_plan(budgeted.decided, options, split), budgeted.decided, options, result.checked,
                          budgeted.record)
    decided = decide(scored, options)
    checked = None
    if options.max_drift is not None:
        result = _prune_and_check(source, decided, _fresh(source, options), split, options, original)
        checked = result.checked
        _enforce_gate(result)
    return PlanResult(to_plan(decided, options, split), decided, options, checked)


def prune(model, options: Options) -> PruneResult:
    """Plan and apply in one pass: the decision goes straight to surgery (no plan round trip)."""
    source = load(model)
    options, shapes = _resolving(source, with_data_shapes(options, source.proto))
    split = data_split(source, options)
    starting = _original_session(source, options, shapes)  # made on a worker while the model is pruned
    scored, budgeted, options = _scored_and_searched(source, split, options, shapes)
    original = starting.result()
    if budgeted is not None:
        return _checked_budget(source, scored, budgeted, split, options, edit_scored=True, original=original)[1]
    decided = decide(scored, options)
    result = _prune_and_check(source, decided, scored.analyzed, split, options, original)
    _enforce_gate(result)
    return result


def _scored_and_searched(source, split, options: Options, shapes):
    """The scored model, with a budget search its result, and ``options`` with the input shapes
    ``shapes`` found while the model was analysed: the work the executor's workers share
    (calibration shards, candidate evaluations); they stop before the final check."""
    with _executor(options) as executor:
        analyzed, options = _analyzed(source, options, shapes)
        scored = score(analyzed, options, split, executor)
        return scored, (_search(scored, split, options, executor) if options.search else None), options


def apply_plan(model, the_plan: PruningPlan, options: Options) -> PruneResult:
    """Apply a plan made for ``model`` (a plan for another model is refused, exit 3)."""
    source = load(model)
    the_plan.check_model(source.fingerprint, options.label or source.label)
    options, shapes = _resolving(source, plan_options(the_plan, options))
    split = data_split(source, options)
    check_repair_data(the_plan, split)
    starting = _original_session(source, options, shapes)
    analyzed, options = _analyzed(source, options, shapes)
    original = starting.result()
    removed, notes, compensation = from_plan(analyzed, the_plan)
    pruned = apply_stage(analyzed, removed, options, compensation=compensation, feeds=repair_feeds(split))
    recorded = the_plan.options
    result = _result(pruned, analyzed, source, options, skipped_groups(the_plan), str(recorded.get("how", "")),
                     list(notes) + list(the_plan.notes), split, original)
    result.ratio, result.importance, result.plan = (float(recorded.get("ratio", 0.0)),
                                                    str(recorded.get("importance", "plan")), the_plan)
    _enforce_gate(result)
    return result


def _resolving(source, options: Options):
    """``options`` and the concrete sizes of the model's dynamic input dims, found once per command
    (the user's ``input_shapes`` win; see :class:`graphprune.validation.PendingShapes`). When the
    sizes are ready at once, the options carry them; otherwise onnxruntime tries sizes on a worker
    thread and :func:`_analyzed` puts them in."""
    from ..validation import PendingShapes

    shapes = PendingShapes(source.proto, options.input_shapes)
    return (replace(options, input_shapes=shapes.result()) if shapes.ready else options), shapes


def _original_session(source, options: Options, shapes, wanted: bool = True):
    """The original's session for the drift check (:func:`~graphprune.pipeline.check.original_session`),
    started as soon as the model's input sizes are known: now, or on the size probe's worker the
    moment it finds them; a Future of it (of None when not ``wanted``)."""
    if not wanted:
        return shapes.after(lambda found: None)
    return shapes.after(lambda found: original_session(source, replace(options, input_shapes=found)))


def _analyzed(source, options: Options, shapes):
    """The prepared and analysed model, and ``options`` with the input shapes ``shapes`` found
    meanwhile (preparing and analysing a model never reads its input sizes)."""
    analyzed = analyze(prepare(source, options), options)
    return analyzed, replace(options, input_shapes=shapes.result())


def data_split(source, options: Options):
    """Where calibration and checked samples come from (None: no data given, random inputs check)."""
    if options.calib is None and options.data is None:
        return None
    from ..validation.split import DataSplit

    stream = None
    if options.tokenizer is not None and options.calib is not None:  # one sentence per sample: held out one by one
        from .feeds import option_feeds

        stream = lambda: iter(option_feeds(options, source.proto, None, text_batch=1))  # noqa: E731
    return DataSplit(options.calib, source.proto, eval_split=options.eval_split, seed=options.seed,
                     calib_limit=options.calib_samples, image_options=options.image_options, data=options.data,
                     stream=stream)


def repair_feeds(split):
    """What the sequential and statistics repairs read: the split's calibration samples, anew on each
    call (held-out samples never reach a repair); None without calibration data."""
    return split.calibration if split is not None and split.calib is not None else None


def _fresh(source, options: Options):
    """A new prepared and analysed copy of ``source`` (apply edits the graph it is given)."""
    return analyze(prepare(source, options), options)


def _prune_and_check(source, decided, analyzed, split, options: Options, original=None) -> PruneResult:
    pruned = apply_stage(analyzed, decided.decision.removed, options, compensation=decided.compensation,
                         feeds=repair_feeds(split), before=decided.reference)
    result = _result(pruned, analyzed, source, options, decided.decision.skipped, decided.how,
                     list(decided.decision.notes), split, original)
    result.ratio, result.predicted = decided.decision.t, predicted(decided)
    return result


def _search(scored, split, options: Options, executor):
    """The budget search on the calibration samples, its candidates measured by ``executor``."""
    from .budget import CURVE_SAMPLES, SEARCH_SAMPLES, budget
    from .candidates import Engine

    search = split.search_feeds(SEARCH_SAMPLES)
    repair_samples = split.repair_feeds(len(search)) if DATA_REPAIRS & set(options.repair) else []
    engine = Engine(scored.analyzed, scored.stats, search, options, executor, CURVE_SAMPLES, repair_samples)
    return budget(scored, options, engine)


def _checked_budget(source, scored, budgeted, split, options: Options, *, edit_scored: bool, original=None):
    """The check on held-out samples of the model ``apply`` writes; while it misses, the most
    sensitive step is rolled back and checked again."""
    from .budget import roll_back

    analyzed = scored.analyzed if edit_scored else _fresh(source, options)
    while True:
        result = _prune_and_check(source, budgeted.decided, analyzed, split, options, original)
        record = budgeted.record
        record.evaluations["final check"] += 1
        record.checks.append({"groups": len(record.counts), "drift": result.gate.drift,
                              "samples": result.gate.samples, "passed": result.gate.passed})
        result.budget = record
        if result.gate.passed:
            return budgeted, result
        budgeted = roll_back(budgeted, options)
        if budgeted is None:
            raise DriftBudgetExceeded(
                f"{result.gate.line()}; every pruned group was rolled back one step at a time and the check "
                "still missed: nothing was written (raise --max-drift, or give more calibration data)", result)
        analyzed = _fresh(source, options)


@contextlib.contextmanager
def _executor(options: Options):
    """``options.executor`` when it is an Executor (left open: the caller owns it), or the executor it
    names ("local" worker processes by default, "ray"), closed after use (aborted on an error)."""
    if isinstance(options.executor, Executor):
        yield options.executor
        return
    if options.executor == "ray":
        from ..execution.ray_executor import RayExecutor

        named = RayExecutor(jobs=options.jobs, address=options.ray_address)
    else:
        named = LocalExecutor(options.jobs)
    with named as executor:
        yield executor


def _enforce_gate(result: PruneResult) -> None:
    """A result that misses --max-drift is never handed on: it travels inside the error, for the summary."""
    if result.gate is not None and not result.gate.passed:
        raise DriftBudgetExceeded(f"{result.gate.line()}; nothing was written", result)


def _result(pruned, analyzed, source, options: Options, skipped: dict, how: str, notes: list,
            split=None, original=None) -> PruneResult:
    checked = check(pruned, source, options, split, original) if options.validate else None
    result = PruneResult(pruned.model, pruned.analysis, pruned.removed, skipped, options.ratio, options.importance,
                         pruned.params_before, pruned.params_after, pruned.macs_before, pruned.macs_after,
                         fold=analyzed.prepared.fold, oracle=checked.oracle if checked else None,
                         drift=checked.drift if checked else None, layers=pruned.layers,
                         compensation=pruned.compensation, notes=notes + (split.notes if split else []), how=how,
                         source=source, metric=options.metric, gate=checked.gate if checked else None,
                         data_split=split.to_dict() if split is not None else None, repair=pruned.repair)
    result.checked = checked
    return result


def sensitivity(model, options: Options, ratios, random_samples: int, metric: str = "rel"):
    """Drift when each prunable group alone loses each fraction in ``ratios`` of its slots."""
    from ..execution.sensitivity import sensitivity as run_sensitivity
    from .score import calibrate_analyzed, make_scorer

    source = load(model)
    options, shapes = _resolving(source, with_data_shapes(options, source.proto))
    analyzed, options = _analyzed(source, options, shapes)
    if options.calib is not None:
        from .feeds import calibration_label, option_feeds

        feeds = list(option_feeds(options, source.proto, options.calib_samples))
        label = calibration_label(options)
    else:
        from ..validation.feeds import make_feeds

        feeds = make_feeds(source.proto, random_samples, seed=options.seed, input_shapes=options.input_shapes)
        label = f"seeded random inputs (seed {options.seed})"
    with _executor(options) as executor:
        stats = calibrate_analyzed(analyzed, options, executor=executor) if options.importance in _data_driven() \
            else None
        scorer = make_scorer(analyzed, options, stats)
        return run_sensitivity(analyzed.prepared.model, analyzed.analysis, scorer, feeds, ratios=ratios,
                               source=label, progress=options.progress, metric=metric, executor=executor,
                               strict_initializer_inputs=options.strict_initializer_inputs)


def _data_driven():
    from ..importance import DATA_DRIVEN

    return DATA_DRIVEN
