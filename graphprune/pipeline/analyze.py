"""Stage ``analyze``: dependency groups, slots and barriers of a prepared model (once)."""
from __future__ import annotations

from ..analysis.builder import analyze as build_analysis
from ..graph.index import GraphIndex
from ..graph.proto import weightless_copy
from ..rules import DEFAULT_RULES
from .options import Options
from .values import Analyzed, Prepared


def analyze(prepared: Prepared, options: Options, rules=DEFAULT_RULES) -> Analyzed:
    # both pause the cyclic garbage collector where they make many small objects (graph.gc_pause)
    index = _index(prepared, options.strict_initializer_inputs)
    return Analyzed(prepared, build_analysis(index, rules=rules, attention=options.attention))


def _index(prepared: Prepared, strict: bool) -> GraphIndex:
    """The index of the prepared graph. Shapes prepare inferred for an unchanged graph are its
    shapes; else they are inferred on a weight-less copy of the source's proto when the graph is
    the source's as given (the bytes serializing it would give), or on the serialized graph."""
    skeleton = prepared.skeleton
    if skeleton is None and prepared.unchanged:
        skeleton = weightless_copy(prepared.source.proto)
    return GraphIndex(prepared.model, shapes=prepared.shapes, skeleton=skeleton, strict_initializer_inputs=strict)
