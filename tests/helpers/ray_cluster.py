"""Task functions for the Ray executor tests: a candidate evaluation that stops at one task and
waits (so a test can kill its worker, or interrupt the caller, while it runs), and a local Ray
cluster of real processes on the loopback address.

Workers import this module by name (the cluster's processes inherit PYTHONPATH from the test).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from graphprune.execution.candidates import zeroed_drift

#: how long a held task waits for the test before it gives up (a test that hangs fails instead)
HOLD_SECONDS = 120.0


def held_drift(state, task, *, gate: str, victim, release: str = "released"):
    """``(pid, drift of task)``; the ``victim`` task first writes its pid to ``gate/victim.pid`` and
    waits until ``gate/<release>`` exists (if its process is killed meanwhile, Ray runs it again)."""
    gate_dir = Path(gate)
    if task == victim:
        (gate_dir / f"victim.{os.getpid()}.pid").write_text(str(os.getpid()))
        deadline = time.monotonic() + HOLD_SECONDS
        while not (gate_dir / release).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the test never released {gate_dir / release}")
            time.sleep(0.05)
        (gate_dir / f"finished.{os.getpid()}").write_text("")
    return os.getpid(), zeroed_drift(state, task)


def first_held_drift(state, task, *, gate: str):
    """The drift of ``task``; the first task of all (whichever worker runs it) holds as
    :func:`held_drift` does."""
    claim = Path(gate) / "claimed"
    try:
        fd = os.open(claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return zeroed_drift(state, task)
    os.close(fd)
    return held_drift(state, task, gate=gate, victim=task)[1]


def waiting_pid(gate: Path, timeout: float = 60.0, command=None) -> int:
    """The pid a held task wrote, waiting for it (``command``: a process that must still run)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if command is not None and command.poll() is not None:
            raise AssertionError(f"the command ended (exit {command.returncode}) before a task was held: "
                                 f"{command.stderr.read()[-2000:]}")
        pids = [int(p.read_text()) for p in sorted(gate.glob("victim.*.pid")) if p.read_text()]
        if pids:
            return pids[0]
        time.sleep(0.05)
    raise TimeoutError(f"no task held in {gate} within {timeout:g} s")


def alive(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state not in ("Z", "X")


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not true after {timeout:g} s")
        time.sleep(0.1)


@dataclass
class LocalCluster:
    """A head node (no CPU) and two worker nodes of one CPU each, every process on 127.0.0.1."""

    address: str
    temp_dir: str
    workers: list


#: environment of the cluster's processes and of the test's Ray driver. Ray turns 127.0.0.1 into this
#: machine's network address unless multi-node clusters are off, so that switch keeps it on loopback
#: (``cluster_utils`` starts worker nodes without the check that ``ray start`` makes). Token
#: authentication is off: a loopback cluster needs none, and with it a driver that started a Ray of
#: its own and then reconnects to this cluster has every new actor cancelled before it runs
RAY_ENVIRONMENT = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
                   "RAY_AUTH_MODE": "disabled"}


@contextmanager
def local_cluster(root: str):
    """A real local Ray cluster (gcs_server and three raylets, each with its workers), its files
    in a temporary folder, stopped and removed on exit whatever happened."""
    temp_dir = tempfile.mkdtemp(prefix="gp-ray-")  # short: Ray's socket paths must stay under 108 bytes
    saved = {k: os.environ.get(k) for k in (*RAY_ENVIRONMENT, "RAY_TMPDIR", "PYTHONPATH", "RAY_ADDRESS")}
    os.environ.update(RAY_ENVIRONMENT, RAY_TMPDIR=temp_dir,
                      PYTHONPATH=os.pathsep.join(p for p in (root, saved["PYTHONPATH"]) if p))
    os.environ.pop("RAY_ADDRESS", None)
    os.makedirs(os.path.join(temp_dir, "ray"))
    cluster = None
    try:
        import ray
        from ray._private import services
        from ray.cluster_utils import Cluster

        if services.get_node_ip_address() != "127.0.0.1":
            raise RuntimeError("ray was imported before the cluster fixture set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0: "
                               "this process would reach the cluster on a network address, not loopback")
        cluster = Cluster(initialize_head=True, shutdown_at_exit=False,
                          head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1", "temp_dir": temp_dir,
                                          "include_dashboard": False})
        workers = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
        yield LocalCluster(cluster.address, temp_dir, workers)
    finally:
        if "ray" in locals() and ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)
