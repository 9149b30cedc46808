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


def node_times(model, feed: dict, *, runs: int = LATENCY_RUNS, threads: int = 1) -> dict[str, float]:
    """Median milliseconds per node of ``model`` (a ModelProto, graph optimizations off so node
    names are the graph's) over ``runs`` profiled runs after one warm-up run."""
    import json
    import os
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from ..validation.runner import session_options

    with tempfile.TemporaryDirectory(prefix="graphprune-profile-") as tmp:
        opts = session_options(exact=True, threads=threads)
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        inputs = {i.name for i in session.get_inputs()}
        feed = {k: v for k, v in feed.items() if k in inputs}
        session.run(None, feed)
        for _ in range(runs):
            session.run(None, feed)
        with open(session.end_profiling(), encoding="utf-8") as handle:
            events = json.load(handle)
    times: dict[str, list[float]] = {}
    suffix = "_kernel_time"
    for event in events:
        name = event.get("name", "")
        if event.get("cat") == "Node" and name.endswith(suffix):
            times.setdefault(name[: -len(suffix)], []).append(event.get("dur", 0) / 1000.0)
    # the first entry of every node is the warm-up run
    return {name: float(np.median(values[1:] or values)) for name, values in times.items()}
