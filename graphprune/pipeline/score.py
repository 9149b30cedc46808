"""Stage ``score``: calibration statistics (when the criterion or a repair needs data) and the scorer."""
from __future__ import annotations

from ..calibration.sites import activation_spaces, whole_size
from ..calibration.tokens import token_mask
from ..validation.data_files import count_inputs
from ..importance import MagnitudeImportance, TransferredImportance, make_importance, position_scores
from .feeds import calibration_label, option_feeds
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
    """Statistics of every consumer activation of the prunable groups over the calibration data
    (the split's calibration samples when given, else the first ``calib_samples``; real tokens only,
    when the model has an attention mask: :mod:`graphprune.calibration.tokens`). With ``executor``
    of several workers, they calibrate shards of the samples (the same sums, added in the same order)."""
    from ..calibration.collect import calibrate  # imports onnxruntime: only when there is data
    from ..calibration.shards import calibrate_sharded
    from ..graph.model import to_proto

    analysis = analyzed.analysis
    sizes = {s: whole_size(analysis, s) for s in activation_spaces(analysis.prunable_groups, analysis.index)}
    spaces = [s for s, size in sizes.items() if size is not None]
    model = to_proto(analyzed.prepared.model)
    common = dict(sizes=sizes, gram=spaces if options.needs_covariance else (), progress=options.progress,
                  source=calibration_label(options), mask=token_mask(analysis.index, spaces))
    sharded = _sharded_data(analyzed, options, split, executor)
    if sharded is not None:
        return calibrate_sharded(model, spaces, *sharded, executor, image_options=options.image_options, **common)
    if split is not None:
        feeds, total = split.calibration(), split.calibration_count
    else:
        feeds, total = option_feeds(options, analyzed.prepared.source.proto, options.calib_samples), options.calib_samples
    return calibrate(model, spaces, feeds, total=None if options.tokenizer and split is None else total, **common)


def _sharded_data(analyzed: Analyzed, options: Options, split, executor):
    """``(data, positions of the calibration samples in it)`` when ``executor`` should calibrate them
    in shards (None: one process streams them). Workers read a data path themselves; text is
    tokenized here and its feeds are sent."""
    if executor is None or executor.width < 2:
        return None
    from ..calibration.shards import worth_sharding

    proto = analyzed.prepared.source.proto
    if options.tokenizer is not None:
        data = list(split.calibration() if split is not None else option_feeds(options, proto, options.calib_samples))
        positions = list(range(len(data)))
    elif split is not None:
        data, positions = options.calib, split.calibration_indices()
    else:
        total = count_inputs(options.calib, proto, **dict(options.image_options or {}))
        data, positions = options.calib, list(range(total if options.calib_samples is None
                                                    else min(total, options.calib_samples)))
    return (data, positions) if worth_sharding(executor, len(positions)) else None


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
