"""Stage ``analyze``: dependency groups, slots and barriers of a prepared model (once)."""
from __future__ import annotations

from ..analysis.builder import analyze as build_analysis
from ..graph.index import GraphIndex
from ..rules import DEFAULT_RULES
from .options import Options
from .values import Analyzed, Prepared


def analyze(prepared: Prepared, options: Options, rules=DEFAULT_RULES) -> Analyzed:
    # both pause the cyclic garbage collector where they make many small objects (graph.gc_pause)
    index = GraphIndex(prepared.model, strict_initializer_inputs=options.strict_initializer_inputs)
    return Analyzed(prepared, build_analysis(index, rules=rules, attention=options.attention))
