"""Executors: independent tasks (candidate evaluations) run by a pool of workers.

Every evaluation of a sensitivity scan or a budget search is one small task (which slots each
group loses, never a model) run against a state that every worker builds once from a shared
payload (the model's bytes and the feeds)::

    context = Context(setup=make_state, payload=(model_bytes, feeds))
    with LocalExecutor(jobs=2) as executor:
        drifts = executor.map(evaluate, [{3: [0, 5]}, {4: [1]}], context=context, progress="search")

``setup`` and ``fn`` must be module-level functions (they are pickled by reference);
``fn(state, task)`` returns a picklable result. ``map`` returns the results in task order, and
the results do not depend on the number of workers: a task's result is a function of the
payload and the task alone.

:class:`Executor` is the interface; :class:`LocalExecutor` runs ``jobs`` worker processes
(``jobs=1``: in this process, no pool). A cluster executor implements the same two methods: on
the first ``map`` of a Context, put ``context.payload`` in the cluster's object store once and
start one worker (actor) per slot that runs ``context.setup(payload)``; then send each
``(fn, task)`` to a free worker and return the results in task order; ``close`` stops the
workers. :class:`~graphprune.execution.ray_executor.RayExecutor` is that executor for a Ray
cluster (``--executor ray``).
Pass an instance as ``executor=`` to :func:`graphprune.prune` (or ``Options``); the caller keeps
ownership (graphprune never closes an executor it was given). The tasks of the budget search are
:class:`~graphprune.execution.candidates.Candidate` values (group id -> removed slot ids), those
of calibration shards of sample positions (:mod:`graphprune.calibration.shards`).

An exception while a ``map`` waits (Ctrl-C's KeyboardInterrupt included) stops the workers
before it propagates, so no task keeps running for a caller that has given up.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..errors import UsageError, WorkerLost
from ..progress import progress as progress_iter

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Context:
    """What every task of a map shares: each worker runs ``setup(payload)`` once and keeps the state.

    The same Context object reuses the workers' states; a new one (even an equal one) builds them again.
    """

    setup: Callable
    payload: object = None
    #: a short name for logs
    label: str = "tasks"


class Executor(ABC):
    """Runs ``fn(state, task)`` for every task, ``state`` built once per worker from a :class:`Context`."""

    #: how many tasks run at the same time
    width: int = 1

    @abstractmethod
    def map(self, fn: Callable, tasks: Sequence, *, context: Context, progress: str | None = None) -> list:
        """The results of ``fn(state, task)`` in task order; ``progress`` names a progress bar."""

    def close(self, *, abort: bool = False) -> None:
        """Stop the workers (``abort``: without waiting for running tasks); a closed executor starts
        new ones when used again."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(abort=exc_type is not None)


def check_jobs(jobs) -> int:
    """``jobs`` as a positive int (None: every CPU of this machine)."""
    if jobs is None:
        return max(os.cpu_count() or 1, 1)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise UsageError(f"--jobs must be a positive integer, got {jobs!r}")
    return jobs


#: seconds between checks for an interrupt while waiting for results
WAIT_SECONDS = 1.0

#: the state of this worker process (a worker serves one context for its whole life)
_WORKER: dict = {}


def _start_worker(setup: Callable, payload) -> None:
    _WORKER["state"] = setup(payload)


def _run_task(item):
    fn, task = item
    return fn(_WORKER["state"], task)


@contextlib.contextmanager
def _main_module_hidden():
    """Start workers without re-running the caller's ``__main__``: tasks and setups are graphprune
    functions, so workers never need it, and a script without ``if __name__ == "__main__"`` would
    otherwise run again in every worker (spawn imports the parent's main module by its path)."""
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if "__spec__" not in saved:
                main.__dict__.pop("__spec__", None)


def _workers(pool) -> tuple[frozenset, bool]:
    """The pids of a pool's worker processes, and whether one has exited. ``multiprocessing.Pool``
    replaces a worker that dies and never finishes the task it was running: without this look at
    its (private) process list, a killed worker would leave the command waiting forever."""
    processes = list(getattr(pool, "_pool", ()))
    return frozenset(p.pid for p in processes), any(p.exitcode is not None for p in processes)


def _each(results, count: int, pool):
    """The ``count`` results of a pool's ``imap``, waking up every :data:`WAIT_SECONDS` (an interrupt
    is seen while a task runs, and a worker that died raises :class:`WorkerLost`)."""
    started, _ = _workers(pool)
    for index in range(count):
        while True:
            try:
                yield results.next(timeout=WAIT_SECONDS)
                break
            except multiprocessing.TimeoutError:
                pids, exited = _workers(pool)
                if exited or (started and pids != started):
                    raise WorkerLost(f"task {index + 1} of {count}: a worker process died (killed for lack of "
                                     "memory?); nothing was written (try fewer --jobs)") from None


class LocalExecutor(Executor):
    """``jobs`` worker processes on this machine (default: one per CPU); ``jobs=1`` runs in process.

    Workers are started with ``spawn`` (never ``fork``: the parent may hold onnxruntime threads),
    each receives the context's payload once through the pool initializer, and is kept for the
    next ``map`` with the same context.
    """

    def __init__(self, jobs: int | None = None):
        self.jobs = check_jobs(jobs)
        self.width = self.jobs
        self._pool = None
        self._context: Context | None = None
        self._state = None

    def map(self, fn: Callable, tasks: Sequence, *, context: Context, progress: str | None = None) -> list:
        tasks = list(tasks)
        if not tasks:
            return []
        if self.jobs == 1:
            return self._map_here(fn, tasks, context, progress)
        pool = self._pool_for(context)
        results = pool.imap(_run_task, [(fn, t) for t in tasks], chunksize=1)
        try:
            return list(progress_iter(_each(results, len(tasks), pool), total=len(tasks), desc=progress,
                                      enabled=progress is not None, unit="task"))
        except BaseException:
            self.close(abort=True)
            raise

    def _map_here(self, fn, tasks, context: Context, progress) -> list:
        if self._context is not context:
            self.close()
            self._context, self._state = context, context.setup(context.payload)
        return [fn(self._state, t) for t in progress_iter(tasks, total=len(tasks), desc=progress,
                                                           enabled=progress is not None, unit="task")]

    def _pool_for(self, context: Context):
        if self._pool is not None and self._context is context:
            return self._pool
        self.close()
        log.info("starting %d worker processes for %s", self.jobs, context.label)
        spawn = multiprocessing.get_context("spawn")
        with _main_module_hidden():
            self._pool = spawn.Pool(self.jobs, initializer=_start_worker,
                                    initargs=(context.setup, context.payload))
        self._context = context
        return self._pool

    def close(self, *, abort: bool = False) -> None:
        if self._pool is not None:
            if abort:
                self._pool.terminate()
            else:
                self._pool.close()
            self._pool.join()
        self._pool, self._context, self._state = None, None, None

