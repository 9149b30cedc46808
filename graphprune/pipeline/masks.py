"""Kept indices per initializer axis, for pruning the same channels in the source framework."""
from __future__ import annotations

from ..analysis.builder import analyze
from ..analysis.types import Analysis
from ..graph.index import GraphIndex
from ..passes.normalize import normalize
from ..planning.plan_file import masks, removed_from_kept
from ..surgery.apply import kept_positions
from .values import Source


def export_masks(source: Source, analysis: Analysis, removed: dict, *, folded: bool,
                 strict_initializer_inputs: bool = False) -> dict:
    """initializer -> {axis: kept indices}; with ``folded``, of the model as given (BatchNorm included)."""
    if not folded:
        return masks(analysis, removed)
    graph = source.editable()
    normalize(graph)
    source_analysis = analyze(GraphIndex(graph, strict_initializer_inputs=strict_initializer_inputs))
    carried, _ = removed_from_kept(source_analysis, kept_positions(analysis, removed), strict=False)
    return masks(source_analysis, carried)
