"""What a sandwich case is: the model, the expectations of its groups, and the checks of its
attributes and constants after pruning at 0.5 (see the package docstring)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx

from graphprune.graph import get_attr
from models.builder import GraphBuilder

INT_MAX = 2**63 - 1


# --------------------------------------------------------------------------- expectations
@dataclass(frozen=True)
class Expect:
    """What the group holding ``(weight, axis)`` must look like."""

    weight: str
    axis: int = 0
    slots: int | None = None      # prunable with this many slots
    blocked: str | None = None    # blocked, with this exact reason among its barriers
    kept: dict = field(default_factory=dict)  # {(initializer, axis): size after pruning at 0.5}


class Pruned:
    """The model before (normalized) and after pruning at 0.5, with readers for the checks."""

    def __init__(self, original: onnx.ModelProto, pruned: onnx.ModelProto):
        self.original, self.pruned = original, pruned

    @staticmethod
    def _init(model, name) -> np.ndarray:
        return next(onnx.numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name)

    def node(self, name: str) -> onnx.NodeProto:
        return next(n for n in self.pruned.graph.node if n.name == name)

    def attr(self, node: str, name: str):
        return get_attr(self.node(node), name)

    def const_input(self, node: str, index: int) -> list:
        return self._init(self.pruned, self.node(node).input[index]).reshape(-1).tolist()

    def kept_positions(self, initializer: str, axis: int) -> list[int]:
        """Original positions of ``initializer`` along ``axis`` that survived (other axes unpruned)."""
        before = np.moveaxis(self._init(self.original, initializer), axis, 0)
        after = np.moveaxis(self._init(self.pruned, initializer), axis, 0)
        before = before.reshape(before.shape[0], -1)
        out = []
        for row in after.reshape(after.shape[0], -1):
            (match,) = np.nonzero((before == row).all(axis=1))
            assert match.size == 1, f"{initializer}: a kept slice matches {match.size} original slices"
            out.append(int(match[0]))
        return out


@dataclass
class Case:
    model: onnx.ModelProto
    expects: list[Expect]
    checks: list[Callable[[Pruned], None]]


class Sandwich:
    """A GraphBuilder plus the expectations of the case being built."""

    def __init__(self, name: str, *, opset: int = 17, batch=1, hw: int = 8, channels_last: bool = False):
        self.b = GraphBuilder(name, opset=opset, batch=batch)
        self.x = self.b.input("x", [hw, hw, 3] if channels_last else [3, hw, hw])
        self.expects: list[Expect] = []
        self.checks: list[Callable[[Pruned], None]] = []

    @property
    def last(self) -> str:
        """Name of the last node added."""
        return self.b.nodes[-1].name

    def conv(self, x: str, cin: int, cout: int, k: int = 3, **kw) -> tuple[str, str]:
        y = self.b.conv(x, cin, cout, k, **kw)
        return y, self.b.nodes[-1].input[1]

    def head(self, c: int = 8, *, bn: bool = True, act: str | None = "relu", x: str | None = None,
             cin: int = 3, stride: int = 1) -> tuple[str, str]:
        """Conv(cin→c) [→ BN] [→ act]; returns (output, conv weight)."""
        y, w = self.conv(self.x if x is None else x, cin, c, 3, stride=stride)
        if bn:
            y = self.b.batchnorm(y, c)
        return self.b.act(y, act), w

    def tail(self, x: str, cin: int, out: str = "y", d: int = 4, k: int = 1) -> str:
        """Conv(cin→d) as graph output ``out``; returns its weight."""
        y, w = self.conv(x, cin, d, k)
        self.b.output(y, out)
        return w

    def expect(self, weight: str, slots: int | None = None, blocked: str | None = None, axis: int = 0,
               **kept) -> None:
        """The group of ``(weight, axis)``; ``kept`` items are ``label=(initializer, axis, size)``."""
        self.expects.append(Expect(weight, axis, slots, blocked, {(t, a): n for t, a, n in kept.values()}))

    def check(self, fn: Callable[[Pruned], None]) -> None:
        self.checks.append(fn)

    def check_attr(self, node: str, name: str, value) -> None:
        def fn(p: Pruned):
            got = p.attr(node, name)
            assert got == value, f"{node}.{name} = {got}, expected {value}"
        self.check(fn)

    def check_const(self, node: str, index: int, value: list) -> None:
        def fn(p: Pruned):
            got = p.const_input(node, index)
            assert got == value, f"{node} input {index} = {got}, expected {value}"
        self.check(fn)

    def case(self) -> Case:
        """The model with inferred value_info for every intermediate (as exporters write it), so
        the checker's strict inference also verifies the declared shapes surgery rewrites."""
        model = self.b.finish()
        typed = onnx.shape_inference.infer_shapes(model)
        model.graph.value_info.extend(typed.graph.value_info)
        return Case(model, self.expects, self.checks)

    def pre(self) -> str:
        """A prunable stage in front of a blocking op: Conv(3→6) → BN → Relu (6 slots, 3 kept)."""
        h, w = self.head(6)
        self.expect(w, slots=6, w=(w, 0, 3))
        return h
