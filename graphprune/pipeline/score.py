"""Stage ``score``: calibration statistics (when the criterion or a repair needs data) and the scorer."""
from __future__ import annotations

from ..calibration import activation_spaces, calibrate, calibration_feeds
from ..importance import MagnitudeImportance, TransferredImportance, make_importance, position_scores
from .options import Options
from .values import Analyzed, Scored


def score(analyzed: Analyzed, options: Options) -> Scored:
    stats = calibrate_analyzed(analyzed, options) if options.needs_calibration and options.calib is not None else None
    return Scored(analyzed, make_scorer(analyzed, options, stats), stats)


def calibrate_analyzed(analyzed: Analyzed, options: Options, samples: int | None = -1):
    """Statistics of every consumer activation of the prunable groups over the calibration data."""
    from ..graph.model import to_proto

    analysis = analyzed.analysis
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    sizes = {s: analysis.groups[analysis.space_group[s]].sizes[s] for s in spaces}
    samples = options.calib_samples if samples == -1 else samples
    feeds = calibration_feeds(options.calib, analyzed.prepared.source.proto, limit=samples,
                              image_options=options.image_options)
    source = str(options.calib) if not isinstance(options.calib, (dict, list)) else "arrays"
    return calibrate(to_proto(analyzed.prepared.model), spaces, feeds, sizes=sizes,
                     gram=spaces if options.mean_repair == "refit" else (), progress=options.progress, total=samples, source=source)


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
