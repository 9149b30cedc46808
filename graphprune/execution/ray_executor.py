"""An executor whose workers are actors of a Ray cluster (the ``ray`` extra).

    with RayExecutor(address="10.0.0.5:6379") as executor:
        graphprune.prune("model.onnx", calib="images/", max_drift=0.01, executor=executor)

or ``graphprune prune ... --executor ray [--ray-address HOST:PORT]``. How the executor interface
maps onto Ray:

* **connection**: ``address``, else the ``RAY_ADDRESS`` environment variable, else a local Ray
  started for this executor (and stopped by :meth:`close`). A process that is already connected
  (``ray.init`` called by its owner) is used as it is and stays connected.
* **slots**: ``jobs`` actors of one CPU each (default: one per CPU of the cluster, and never more,
  since an actor waiting for a CPU would hold its tasks), spread over the nodes, started on the
  first ``map`` and kept until :meth:`close`.
* **payload**: a Context's payload is put in the object store once (``ray.put``) on its first
  ``map``; each actor runs ``context.setup(payload)`` on its first task of that context and keeps
  the state (the last :data:`STATES_KEPT` contexts).
* **tasks** carry the task function (by reference) and the task; at most :data:`QUEUED_PER_SLOT`
  wait at each actor; results come back in task order.
* **failures**: an actor whose process dies is restarted and its unfinished tasks run again
  (:data:`RESTARTS` times), with the same result: a task's result depends on the payload and the
  task alone. An exception raised by a task is raised here as itself (its exit code kept).
* **interruption**: an exception while waiting (Ctrl-C's KeyboardInterrupt included) cancels the
  outstanding tasks and stops the actors before it propagates; the next ``map`` starts new ones.

Workers import graphprune by name: every node needs it installed (the same version as here); a
local Ray's workers see this process's ``PYTHONPATH``. A data path given as ``--calib`` is read
by the workers that calibrate: on a cluster it must be readable on every node (shared storage),
or pass the arrays through the API. ``import ray`` happens only here, when a map first runs.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections import OrderedDict
from collections.abc import Callable, Sequence

from ..errors import UsageError, WorkerLost
from ..progress import progress as progress_iter
from .executor import WAIT_SECONDS, Context, Executor, check_jobs

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "graphprune[ray]"'
#: times an actor is restarted after its process died (and its unfinished tasks run again)
RESTARTS = 3
#: tasks waiting at one actor (one running, the next ready to start)
QUEUED_PER_SLOT = 2
#: contexts whose state an actor keeps (the budget search alternates at most two)
STATES_KEPT = 2


def ray_installed() -> bool:
    """True when ``import ray`` would find the package (without importing it)."""
    if "ray" in sys.modules:
        return sys.modules["ray"] is not None
    try:
        return importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        return False


def require_ray() -> None:
    """A usage error saying how to install Ray when it is missing."""
    if not ray_installed():
        raise UsageError(f"--executor ray needs the 'ray' package, which is not installed: {INSTALL_HINT} "
                         "(or use --executor local)")


def _ray():
    require_ray()
    import ray

    return ray


class _Slot:
    """One actor: the states of the contexts it served last, and the tasks it runs against them."""

    def __init__(self):
        self.states: OrderedDict = OrderedDict()

    def run(self, key: int, setup: Callable, payload: list, fn: Callable, task):
        state = self.states.get(key)
        if state is None:
            import ray

            state = self.states[key] = setup(ray.get(payload[0]))
            while len(self.states) > STATES_KEPT:
                self.states.popitem(last=False)
        self.states.move_to_end(key)
        return fn(state, task)

    def pid(self) -> int:
        return os.getpid()


class RayExecutor(Executor):
    """``jobs`` Ray actors (default: one per CPU of the cluster) on the cluster at ``address``."""

    def __init__(self, jobs: int | None = None, address: str | None = None):
        require_ray()
        self.jobs = None if jobs is None else check_jobs(jobs)
        self.address = address
        self._connected_here = False
        self._slots: list = []
        self._contexts: OrderedDict = OrderedDict()  # key -> (context, payload reference)
        self._next_key = 0

    @property
    def width(self) -> int:
        """How many actors run tasks (connects to the cluster and starts them)."""
        return len(self._started())

    @property
    def where(self) -> str:
        return self.address or os.environ.get("RAY_ADDRESS") or "a local Ray"

    def map(self, fn: Callable, tasks: Sequence, *, context: Context, progress: str | None = None) -> list:
        tasks = list(tasks)
        if not tasks:
            return []
        ray = _ray()
        slots = self._started()
        key, payload = self._payload(context)
        results: list = [None] * len(tasks)
        pending: dict = {}
        try:
            done = self._completions(ray, slots, (key, context.setup, payload, fn), tasks, pending, results)
            for _ in progress_iter(done, total=len(tasks), desc=progress, enabled=progress is not None,
                                   unit="task"):
                pass
        except BaseException:
            self._cancel(ray, pending)
            raise
        return results

    def _completions(self, ray, slots, call, tasks, pending, results):
        """Submit tasks to free actors and yield once per finished task (its result stored in ``results``)."""
        upcoming = iter(enumerate(tasks))
        load = {i: 0 for i in range(len(slots))}
        while True:
            for i in sorted(load, key=load.get):
                while load[i] < QUEUED_PER_SLOT and (item := next(upcoming, None)) is not None:
                    pending[slots[i].run.remote(*call, item[1])] = (item[0], i)
                    load[i] += 1
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=WAIT_SECONDS)
            for ref in ready:
                index, slot = pending.pop(ref)
                load[slot] -= 1
                results[index] = self._result(ray, ref, index, len(tasks))
                yield index

    def _result(self, ray, ref, index: int, count: int):
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            log.debug("task %d raised on a Ray worker: %s", index, exc)
            if isinstance(cause, BaseException):
                raise cause from None
            raise
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError) as exc:
            raise WorkerLost(f"task {index + 1} of {count}: its Ray worker died {RESTARTS + 1} times or the "
                             f"cluster at {self.where} went away ({type(exc).__name__}); nothing was written") \
                from exc

    def _started(self) -> list:
        if self._slots:
            return self._slots
        ray = self._connect()
        cpus = int(ray.cluster_resources().get("CPU", 0))
        if cpus < 1:
            raise UsageError(f"the Ray cluster at {self.where} has no CPU for workers (start nodes with --num-cpus)")
        count = cpus if self.jobs is None else min(self.jobs, cpus)
        if self.jobs is not None and self.jobs > cpus:
            log.warning("--jobs %d: the Ray cluster has %d CPUs; starting %d workers", self.jobs, cpus, cpus)
        actor = ray.remote(num_cpus=1, max_restarts=RESTARTS, max_task_retries=RESTARTS,
                           scheduling_strategy="SPREAD")(_Slot)
        self._slots = [actor.remote() for _ in range(count)]
        log.info("started %d Ray workers on %s", count, self.where)
        return self._slots

    def _connect(self):
        ray = _ray()
        if ray.is_initialized():
            return ray
        address = self.address or os.environ.get("RAY_ADDRESS") or "local"
        options = {"address": address, "logging_level": logging.WARNING, "log_to_driver": False}
        if address == "local":
            options.update(include_dashboard=False, num_cpus=self.jobs,
                           runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(_import_roots())}})
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
        self._connected_here = True
        return ray

    def _payload(self, context: Context):
        """(key, [payload reference]) of ``context``: put in the object store on its first map."""
        for key, (known, reference) in self._contexts.items():
            if known is context:
                self._contexts.move_to_end(key)
                return key, [reference]
        self._next_key += 1
        key = self._next_key
        self._contexts[key] = (context, _ray().put(context.payload))
        while len(self._contexts) > STATES_KEPT:
            self._contexts.popitem(last=False)
        log.info("%s: payload in the object store", context.label)
        return key, [self._contexts[key][1]]

    def _cancel(self, ray, pending: dict) -> None:
        """Cancel outstanding tasks and stop the actors (a running task is stopped with its actor)."""
        for ref in pending:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - cancelling is best effort: the actors are killed next
                pass
        self._stop_actors(ray)

    def _stop_actors(self, ray) -> None:
        for slot in self._slots:
            try:
                ray.kill(slot, no_restart=True)
            except Exception:  # noqa: BLE001 - an actor that is already gone
                pass
        self._slots = []
        self._contexts.clear()

    def slot_pids(self) -> list[int]:
        """The process ids of the actors (for diagnostics and tests)."""
        ray = _ray()
        return ray.get([slot.pid.remote() for slot in self._started()])

    def close(self, *, abort: bool = False) -> None:
        if not self._slots and not self._connected_here:
            return
        ray = _ray()
        self._stop_actors(ray)
        if self._connected_here:
            ray.shutdown()
            self._connected_here = False


def _import_roots() -> list[str]:
    """Where this process imports graphprune from, then the inherited PYTHONPATH (for local workers)."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return [here] + [p for p in inherited if p != here]
