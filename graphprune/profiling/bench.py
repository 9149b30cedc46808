"""onnxruntime latency: warm-up, then timed runs of every model interleaved run by run.

Sessions use all ORT graph optimizations (as deployed), the CPU provider and a fixed number of
intra-op threads (inter-op 1, sequential execution). Interleaving (A B, B A, A B, ...) exposes
both models to the same machine noise, so the ratio of their medians is a fair speedup. The
median is the headline; p10/p90 and the standard deviation show the spread.
"""
from __future__ import annotations

import logging
import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from ..errors import UsageError
from ..progress import progress as progress_iter
from ..validation.runner import make_session, run_session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LatencyStats:
    """Wall-clock milliseconds per ``session.run`` over ``runs`` timed runs."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    min_ms: float
    mean_ms: float
    stdev_ms: float
    runs: int
    warmup: int
    threads: int

    @classmethod
    def from_times(cls, seconds: list[float], *, warmup: int, threads: int) -> "LatencyStats":
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        return cls(float(np.median(ms)), float(np.percentile(ms, 10)), float(np.percentile(ms, 90)),
                   float(ms.min()), float(ms.mean()), float(statistics.pstdev(ms.tolist())), len(ms), warmup, threads)

    def to_dict(self) -> dict:
        return asdict(self)


def check_bench_options(threads: int, runs: int, warmup: int) -> None:
    if threads < 1:
        raise UsageError(f"--threads must be at least 1 (got {threads})")
    if runs < 1:
        raise UsageError(f"--runs must be at least 1 (got {runs})")
    if warmup < 0:
        raise UsageError(f"--warmup must be at least 0 (got {warmup})")


def measure_latency(models: list[onnx.ModelProto], feed: dict[str, np.ndarray], *, labels: list[str],
                    threads: int = 1, runs: int = 20, warmup: int = 3, progress: bool = True) -> list[LatencyStats]:
    """Latency of each model on the same ``feed``, runs interleaved (see module docstring)."""
    check_bench_options(threads, runs, warmup)
    sessions = [make_session(m, exact=False, threads=threads, label=lbl) for m, lbl in zip(models, labels)]
    calls = []
    for sess, label in zip(sessions, labels):
        for _ in range(max(1, warmup)):  # at least one checked run: bad feeds fail here, with a clean message
            run_session(sess, feed, label=label)
        names = [i.name for i in sess.get_inputs()]
        calls.append((sess.run, {n: feed[n] for n in names}))
    times: list[list[float]] = [[] for _ in sessions]
    order = list(range(len(sessions)))
    for run in progress_iter(range(runs), total=runs, desc="benchmarking", enabled=progress, unit="run"):
        for i in (order if run % 2 == 0 else order[::-1]):
            call, inputs = calls[i]
            start = time.perf_counter()
            call(None, inputs)
            times[i].append(time.perf_counter() - start)
    stats = [LatencyStats.from_times(t, warmup=warmup, threads=threads) for t in times]
    for label, s in zip(labels, stats):
        log.info("%s: median %.3f ms over %d runs (%d threads)", label, s.median_ms, s.runs, threads)
    return stats
