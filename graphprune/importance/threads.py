"""Scoring many groups at once: the groups with large weights go to worker threads.

numpy's reductions (``einsum``, sums, norms) release the GIL, so the weights of a CNN are read on
every core instead of one (ResNet-50, 25 M parameters: 72 ms of one core for the L2 scores of its
groups). Groups with small parameters stay on the calling thread, where handing them to a worker
would cost more than their arithmetic (a transformer export has thousands of them). A scorer
declares ``thread_safe = True`` when ``score`` only reads the group, the index and its own settings.
Every group's scores are the numbers its ``score`` returns alone: threads change when, not what.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

#: a group whose parameters hold fewer bytes is scored on the calling thread
WORKER_BYTES = 1 << 20
#: worker threads at most (the weights are read once per group, so more rarely pays off)
MAX_WORKERS = 4


def score_groups(groups: list, scorer, tiebreak, index) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Per group, in order: ``(scorer's scores as float64, tiebreak's scores or None)``.

    An error of any group is raised once the groups being scored have ended; the others are not
    started."""
    def both(group):
        scores = np.asarray(scorer.score(group, index), dtype=np.float64)
        return scores, (tiebreak.score(group, index) if tiebreak is not None else None)

    workers = min(os.cpu_count() or 1, MAX_WORKERS)
    safe = getattr(scorer, "thread_safe", False) and getattr(tiebreak, "thread_safe", True)
    large = [i for i, group in enumerate(groups) if safe and param_bytes(group, index) >= WORKER_BYTES]
    if workers < 2 or len(large) < 2:
        return [both(group) for group in groups]
    pool = ThreadPoolExecutor(min(workers, len(large)), thread_name_prefix="graphprune-score")
    try:
        pending = {i: pool.submit(both, groups[i]) for i in large}
        return [pending[i].result() if i in pending else both(group) for i, group in enumerate(groups)]
    finally:  # on an error or Ctrl-C, the groups not started yet are dropped, not scored
        pool.shutdown(wait=True, cancel_futures=True)


def param_bytes(group, index) -> int:
    """Bytes of the initializers the group's parameter slices read (each counted once)."""
    total = 0
    for name in {param.initializer for param in group.params}:
        value = index.initializers.get(name)
        tensor = None if value is None else value.const_value
        total += 0 if tensor is None else tensor.nbytes
    return total
