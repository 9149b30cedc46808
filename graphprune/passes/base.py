"""Pass infrastructure: a pass takes a model and returns ``PassResult(model, modified, notes)``.

Passes mutate the model they are given (callers copy first when they need the original) and
report whether anything changed, so running a pass twice is observably a no-op the second time.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import onnx


@dataclass
class PassResult:
    model: onnx.ModelProto
    modified: bool
    #: human-readable lines: what was done, and what was left alone and why
    notes: list[str] = field(default_factory=list)


class Pass:
    """Base class; subclasses implement :meth:`run`."""

    name = "pass"

    def __call__(self, model: onnx.ModelProto) -> PassResult:
        return self.run(model)

    def run(self, model: onnx.ModelProto) -> PassResult:  # pragma: no cover - abstract
        raise NotImplementedError


def run_passes(model: onnx.ModelProto, passes) -> PassResult:
    modified = False
    notes: list[str] = []
    for p in passes:
        result = p(model)
        model = result.model
        modified |= result.modified
        notes.extend(result.notes)
    return PassResult(model, modified, notes)
