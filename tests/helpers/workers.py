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
