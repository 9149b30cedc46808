"""Stage ``score``: calibration statistics (when the criterion or a repair needs data) and the scorer."""
from __future__ import annotations

from ..calibration import activation_spaces, calibrate, token_mask
from ..calibration.sites import whole_size
from ..importance import MagnitudeImportance, TransferredImportance, make_importance, position_scores
from .feeds import calibration_label, option_feeds
from .options import Options
from .values import Analyzed, Scored


def score(analyzed: Analyzed, options: Options, split=None) -> Scored:
    """``split`` (a :class:`~graphprune.validation.split.DataSplit`): calibrate on its calibration
    samples only; without it, on the first ``calib_samples`` of ``options.calib``."""
    stats = None
    if options.needs_calibration and options.calib is not None:
        stats = calibrate_analyzed(analyzed, options, split)
    return Scored(analyzed, make_scorer(analyzed, options, stats), stats)


def calibrate_analyzed(analyzed: Analyzed, options: Options, split=None):
    """Statistics of every consumer activation of the prunable groups over the calibration data
    (the split's calibration samples when given, else the first ``calib_samples``; real tokens only,
    when the model has an attention mask: :mod:`graphprune.calibration.tokens`)."""
    from ..graph.model import to_proto

    analysis = analyzed.analysis
    sizes = {s: whole_size(analysis, s) for s in activation_spaces(analysis.prunable_groups, analysis.index)}
    spaces = [s for s, size in sizes.items() if size is not None]
    if split is not None:
        feeds, total = split.calibration(), split.calibration_count
    else:
        feeds, total = option_feeds(options, analyzed.prepared.source.proto, options.calib_samples), options.calib_samples
    return calibrate(to_proto(analyzed.prepared.model), spaces, feeds, sizes=sizes,
                     gram=spaces if options.mean_repair == "refit" else (), progress=options.progress,
                     total=None if options.tokenizer and split is None else total, source=calibration_label(options),
                     mask=token_mask(analysis.index, spaces))


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
