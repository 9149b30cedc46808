"""Measured latency of candidate prunings of a prepared model (the ``--target-latency`` search)."""
from __future__ import annotations

import onnx_ir as ir

#: timed runs per latency measurement of a --target-latency search (after 2 warm-up runs)
LATENCY_RUNS = 15


def latency_probe(model: ir.Model, input_shapes, *, threads: int = 1, runs: int = LATENCY_RUNS,
                  progress: bool = False, strict_initializer_inputs: bool = False):
    """A function ``removed -> median ms`` of ``model`` pruned by ``removed`` (never edits ``model``)."""
    from ..analysis.builder import analyze
    from ..graph.index import GraphIndex
    from ..graph.model import from_proto, to_proto
    from ..profiling.bench import measure_latency
    from ..surgery.apply import apply_removal
    from ..validation.feeds import make_feeds

    original = to_proto(model)
    feed = make_feeds(original, 1, seed=0, input_shapes=input_shapes)[0]

    def measure(removed) -> float:
        candidate = original
        if removed:
            graph = from_proto(original)
            apply_removal(graph, analyze(GraphIndex(graph, strict_initializer_inputs=strict_initializer_inputs)),
                          removed)
            candidate = to_proto(graph)
        stats = measure_latency([candidate], feed, labels=["candidate"], threads=threads, runs=runs, warmup=2,
                                progress=progress)
        return float(stats[0].median_ms)

    return measure
