"""Module-level setup and task functions for the executor tests (workers import them by name)."""
from __future__ import annotations

import os
import uuid


def remember(payload):
    """A worker state: the payload and a fresh id (one per call of setup)."""
    return {"payload": payload, "setup": uuid.uuid4().hex, "pid": os.getpid()}


def scaled(state, task):
    """The task times the payload, with who computed it."""
    return task * state["payload"], state["setup"], state["pid"]


def held(state, task):
    """Task ``"hold"`` writes its pid to the folder in the payload and sleeps (a test interrupts it)."""
    import time
    from pathlib import Path

    if task == "hold":
        (Path(state["payload"]) / f"held.{os.getpid()}").write_text(str(os.getpid()))
        time.sleep(120)
        (Path(state["payload"]) / "finished").write_text("")
    return task


def refused(state, task):
    """Raises the error graphprune raises for unusable data, naming the task."""
    from graphprune.errors import DataError

    if task == "bad":
        raise DataError(f"sample {task}: refused")
    return task


def dies(state, task):
    """Task ``"die"`` ends its worker process at once, every time it runs (as an OOM kill would)."""
    if task == "die":
        os._exit(1)
    return task
