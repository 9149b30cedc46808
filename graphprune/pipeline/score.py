"""Stage ``score``: calibration statistics (when the criterion or a repair needs data) and the scorer."""
from __future__ import annotations

from ..calibration import activation_spaces, calibrate, calibration_feeds
from ..calibration.shards import calibrate_sharded, worth_sharding
from ..validation.data_files import count_inputs
from ..importance import MagnitudeImportance, TransferredImportance, make_importance, position_scores
from .options import Options
from .values import Analyzed, Scored


def score(analyzed: Analyzed, options: Options, split=None, executor=None) -> Scored:
    """``split`` (a :class:`~graphprune.validation.split.DataSplit`): calibrate on its calibration
    samples only; without it, on the first ``calib_samples`` of ``options.calib``. ``executor``:
    calibration shards run on its workers when it has several (the statistics are the same)."""
    stats = None
    if options.needs_calibration and options.calib is not None:
        stats = calibrate_analyzed(analyzed, options, split, executor)
    return Scored(analyzed, make_scorer(analyzed, options, stats), stats)


def calibrate_analyzed(analyzed: Analyzed, options: Options, split=None, executor=None):
    """Statistics of every consumer activation of the prunable groups over the calibration data."""
    from ..graph.model import to_proto

    analysis = analyzed.analysis
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    sizes = {s: analysis.groups[analysis.space_group[s]].sizes[s] for s in spaces}
    gram = spaces if options.refit else ()
    source = str(options.calib) if not isinstance(options.calib, (dict, list)) else "arrays"
    model = to_proto(analyzed.prepared.model)
    positions = calibration_positions(analyzed, options, split, executor)
    if positions is not None:
        return calibrate_sharded(model, spaces, options.calib, positions, executor, sizes=sizes, gram=gram,
                                 image_options=options.image_options, progress=options.progress, source=source)
    if split is not None:
        feeds, total = split.calibration(), split.calibration_count
    else:
        feeds = calibration_feeds(options.calib, analyzed.prepared.source.proto, limit=options.calib_samples,
                                  image_options=options.image_options)
        total = options.calib_samples
    return calibrate(model, spaces, feeds, sizes=sizes, gram=gram, progress=options.progress, total=total,
                     source=source)


def calibration_positions(analyzed: Analyzed, options: Options, split, executor) -> list[int] | None:
    """Where the calibration samples are in ``options.calib`` when ``executor`` should calibrate them
    in shards (None: one process streams them)."""
    if executor is None:
        return None
    if split is not None:
        positions = split.calibration_indices()
    else:
        total = count_inputs(options.calib, analyzed.prepared.source.proto, **dict(options.image_options or {}))
        positions = list(range(total if options.calib_samples is None else min(total, options.calib_samples)))
    return positions if worth_sharding(executor, len(positions)) else None


def make_scorer(analyzed: Analyzed, options: Options, stats=None):
    """The scorer for ``options.importance``; ``bn-scale`` on a folded model scores the model as
    given (its BatchNorms) and carries the scores over through the tensors both share."""
    if options.importance == "bn-scale" and not options.keep_bn:
        from ..analysis.builder import analyze
        from ..graph.index import GraphIndex
        from ..passes.normalize import normalize

        unfolded = analyzed.prepared.source.editable()
        normalize(unfolded)
        before = analyze(GraphIndex(unfolded, strict_initializer_inputs=options.strict_initializer_inputs))
        positions = position_scores(before, make_importance("bn-scale", aggregate=options.aggregate))
        return TransferredImportance("bn-scale", positions, MagnitudeImportance(2, options.aggregate))
    return make_importance(options.importance, seed=options.seed, aggregate=options.aggregate, stats=stats)
