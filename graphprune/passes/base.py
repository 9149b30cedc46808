"""Pass infrastructure: passes over the editable graph that compose.

A pass takes an ``onnx_ir.Model``, edits it in place and returns ``PassResult(model, modified,
notes)``; running it again on its own output changes nothing. A pass may declare checks that run
before and after it (``checks_before``/``checks_after``: callables that raise on a broken model,
e.g. the structure check). :class:`PassSequence` runs passes in order; :class:`FixpointPass`
repeats a sequence until a round changes nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import onnx_ir as ir

log = logging.getLogger(__name__)

Check = Callable[[ir.Model], None]


@dataclass
class PassResult:
    model: ir.Model
    modified: bool
    #: human-readable lines: what was done, and what was left alone and why
    notes: list[str] = field(default_factory=list)
    #: the results of the passes a composite pass ran, in order
    parts: list["PassResult"] = field(default_factory=list)


class Pass:
    """Base class; subclasses implement :meth:`run`."""

    name = "pass"
    checks_before: tuple[Check, ...] = ()
    checks_after: tuple[Check, ...] = ()

    def __call__(self, model: ir.Model) -> PassResult:
        for check in self.checks_before:
            check(model)
        result = self.run(model)
        if result.modified:
            for check in self.checks_after:
                check(result.model)
        return result

    def run(self, model: ir.Model) -> PassResult:  # pragma: no cover - abstract
        raise NotImplementedError


class PassSequence(Pass):
    """Run passes in order; modified when any of them modified the model."""

    name = "sequence"

    def __init__(self, passes, checks_after: tuple[Check, ...] = ()):
        self.passes = list(passes)
        self.checks_after = tuple(checks_after)

    def run(self, model: ir.Model) -> PassResult:
        parts = []
        for p in self.passes:
            result = p(model)
            model = result.model
            parts.append(result)
        return PassResult(model, any(r.modified for r in parts), [n for r in parts for n in r.notes], parts)


class FixpointPass(Pass):
    """Repeat a sequence of passes until a round changes nothing (at most ``max_rounds``)."""

    name = "fixpoint"

    def __init__(self, passes, max_rounds: int = 8):
        self.sequence = PassSequence(passes)
        self.max_rounds = max_rounds

    def run(self, model: ir.Model) -> PassResult:
        rounds: list[PassResult] = []
        for _ in range(self.max_rounds):
            result = self.sequence(model)
            model = result.model
            rounds.append(result)
            if not result.modified:
                break
        else:
            log.warning("%s still changed the graph after %d rounds; stopping",
                        "+".join(p.name for p in self.sequence.passes), self.max_rounds)
        return PassResult(model, any(r.modified for r in rounds), [n for r in rounds for n in r.notes], rounds)
