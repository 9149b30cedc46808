"""Run a model once at chosen input sizes: does it run, what shapes come out, which node refuses.

The probe session is built from the model with its nodes numbered (``graphprune_probe_<i>``,
names restored right after the session is made), so onnxruntime's error names the index of
the node that refused the sizes even when the model leaves its nodes unnamed. A *trunk*
(the part of the model that computes one tensor) measures that tensor at any size, also where
the rest of the model does not run.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..errors import GraphPruneError
from .constraints import Constraint, trunk
from .inputs import InputSpec, random_array
from .runner import first_line, make_session

log = logging.getLogger(__name__)

PROBE_NODE_PREFIX = "graphprune_probe_"
_FAILED_NODE = re.compile(r"Name:'" + PROBE_NODE_PREFIX + r"(\d+)'")
#: seed of the random inputs a probe feeds (values rarely matter for shapes; fixed for reproducibility)
PROBE_SEED = 0

Shapes = Mapping[str, tuple[int, ...]]


@dataclass(frozen=True)
class Outcome:
    """One probe run: the output shapes when it ran, else the refusing node (index) and message."""

    ok: bool
    output_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    failed_node: int | None = None
    message: str = ""


@contextmanager
def _numbered_nodes(graph: onnx.GraphProto):
    names = [node.name for node in graph.node]
    try:
        for i, node in enumerate(graph.node):
            node.name = f"{PROBE_NODE_PREFIX}{i}"
        yield
    finally:
        for node, name in zip(graph.node, names):
            node.name = name


def numbered_bytes(model: onnx.ModelProto) -> bytes:
    """``model`` serialized with its nodes numbered (the proto's own names are restored at once):
    what a :class:`Probe` made on another thread is given, so that it never edits a proto that
    someone else reads."""
    with _numbered_nodes(model.graph):
        return model.SerializeToString()


class Probe:
    """onnxruntime runs of ``model`` at chosen input shapes (one session, trunks made on demand).

    ``numbered``: the model's :func:`numbered_bytes`, made beforehand; without them the proto's
    nodes are numbered while the session is made (the caller must be the proto's only reader)."""

    def __init__(self, model: onnx.ModelProto, specs: list[InputSpec], numbered: bytes | None = None):
        self.model, self.specs = model, specs
        if numbered is not None:
            self.session = make_session(numbered, exact=True, label="size probe")
        else:
            with _numbered_nodes(model.graph):
                self.session = make_session(model, exact=True, label="size probe")
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.runs = 0
        self._trunks: dict[str, object] = {}
        self._measured: dict[tuple, int | None] = {}

    def feed(self, shapes: Shapes) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(PROBE_SEED)
        return {s.name: random_array(rng, tuple(shapes[s.name]), s.dtype) for s in self.specs}

    def run(self, shapes: Shapes) -> Outcome:
        """Run the whole model at ``shapes``."""
        self.runs += 1
        try:
            values = self.session.run(self.output_names, self.feed(shapes))
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception zoo
            text = first_line(exc)
            found = _FAILED_NODE.search(text)
            log.debug("size probe %s: fails (%s)", _fmt(shapes), text)
            return Outcome(False, failed_node=int(found.group(1)) if found else None, message=text)
        log.debug("size probe %s: runs", _fmt(shapes))
        return Outcome(True, {n: tuple(np.shape(v)) for n, v in zip(self.output_names, values)})

    def measure(self, constraint: Constraint, shapes: Shapes) -> int | None:
        """``constraint``'s measure of its tensor at ``shapes`` (None when the trunk does not run)."""
        key = (constraint.tensor, constraint.axis, tuple(sorted((k, tuple(v)) for k, v in shapes.items())))
        if key not in self._measured:
            self._measured[key] = self._measure(constraint, shapes)
        return self._measured[key]

    def _measure(self, constraint: Constraint, shapes: Shapes) -> int | None:
        if constraint.tensor in shapes:  # a graph input: its shape is the one fed
            return constraint.measure(tuple(shapes[constraint.tensor]))
        session = self._trunk(constraint.tensor)
        if session is None:
            return None
        self.runs += 1
        try:
            (value,) = session.run([constraint.tensor], self.feed(shapes))
        except Exception as exc:  # noqa: BLE001 - see run
            log.debug("size probe of %r at %s: fails (%s)", constraint.tensor, _fmt(shapes), first_line(exc))
            return None
        return constraint.measure(tuple(np.shape(value)))

    def _trunk(self, tensor: str):
        if tensor not in self._trunks:
            try:
                self._trunks[tensor] = make_session(trunk(self.model, [tensor]), exact=True, label="size probe")
            except GraphPruneError as exc:
                log.debug("no trunk session for %r: %s", tensor, exc)
                self._trunks[tensor] = None
        return self._trunks[tensor]


def _fmt(shapes: Shapes) -> str:
    return ", ".join(f"{name}:{'x'.join(map(str, shape))}" for name, shape in shapes.items())
