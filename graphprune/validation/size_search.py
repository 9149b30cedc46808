"""The search behind :func:`graphprune.validation.sizes.resolve_input_shapes`: try sizes, then solve.

:class:`SizeSearch` runs candidate sizes through a :class:`~graphprune.validation.probe.Probe`.
When none runs, it reads the refusing node for a size it fixes and searches a size meeting
it: the measured tensor (an element count or one axis) grows with the input size, so a
doubling search brackets the target and a bisection finds the smallest size that reaches it;
of the sizes that meet the target just above it, the one divisible by the largest power of two
(up to 64) is preferred, as models are usually built for such sizes. Images whose height and
width are separate dims are searched at each of :data:`ASPECT_RATIOS`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import onnx

from ..input_checks import element_count
from .constraints import Constraint, ModelConstants, node_constraints, resize_sizes
from .inputs import InputSpec, read_dim
from .probe import PROBE_NODE_PREFIX, Outcome, Probe

#: height / width ratios searched for images with separate height and width dims (square first)
ASPECT_RATIOS = (1.0, 3 / 4, 4 / 3, 9 / 16, 16 / 9)
#: an input the model names through a Resize size is tried at that size times these factors
RESIZE_SCALES = (1, 2, 4, 8, 16, 32)
#: preferred divisors of a searched size (largest first)
ROUND_STEPS = (64, 32, 16, 8, 4, 2)
#: no probe feeds an input with more elements than this (a 3 x 1672 x 1672 image)
MAX_PROBE_ELEMENTS = 2**23
#: onnxruntime runs one resolution may spend before asking the user
MAX_PROBE_RUNS = 200
#: refusing nodes whose constraints are solved before giving up
MAX_SOLVED_NODES = 4

Sizes = dict[str, int]


def image_axes(specs: list[InputSpec], free: list) -> list[tuple[str, ...]]:
    """Per 4-D/5-D input, the keys of its free spatial dim groups in axis order (1 or 2 keys)."""
    member_key = {m: g.key for g in free if g.role == "spatial" for m in g.members}
    found = []
    for spec in specs:
        keys = []
        for axis in range(len(spec.dims or ())):
            key = member_key.get((spec.name, axis))
            if key is not None and key not in keys:
                keys.append(key)
        if keys:
            found.append(tuple(keys[-2:]))
    return found


def resize_candidates(model: onnx.ModelProto, specs: list[InputSpec], free: list) -> list[tuple[Sizes, str]]:
    """The largest constant Resize size of the model, times :data:`RESIZE_SCALES`, as input sizes."""
    axes = image_axes(specs, free)
    pairs = resize_sizes(ModelConstants(model, [s.name for s in specs])) if axes else []
    if not pairs:
        return []
    height, width = pairs[0]
    out = []
    for scale in RESIZE_SCALES:
        sizes = {g.key: 16 for g in free if g.role == "sequence"}
        for keys in axes:
            if len(keys) == 2:
                sizes[keys[0]], sizes[keys[1]] = height * scale, width * scale
            elif height == width:
                sizes[keys[0]] = height * scale
        if all(g.key in sizes for g in free):
            how = f"a Resize in the model targets {height}x{width}"
            out.append((sizes, how if scale == 1 else f"{how}; the input is {scale}x that"))
    return out


def _declared_outputs(model: onnx.ModelProto) -> dict[str, tuple]:
    out = {}
    for vi in model.graph.output:
        if vi.type.HasField("tensor_type") and vi.type.tensor_type.HasField("shape"):
            out[vi.name] = tuple(read_dim(d) for d in vi.type.tensor_type.shape.dim)
    return out


class SizeSearch:
    """Tries sizes for the free dim groups of one model; ``shapes_of(sizes)`` gives the input shapes."""

    def __init__(self, model: onnx.ModelProto, specs: list[InputSpec], shapes_of: Callable[[Sizes], Mapping],
                 numbered: bytes | None = None):
        self.model, self.specs, self.shapes_of = model, specs, shapes_of
        self.probe = Probe(model, specs, numbered)
        self.declared = _declared_outputs(model)
        self.tried: list[Sizes] = []
        self.refusals: list[str] = []

    def find(self, free: list, candidates: list[tuple[Sizes, str]]) -> tuple[Sizes, str] | None:
        """The first candidate that runs with the declared output shapes, else one that runs, else solved.

        ``free``: the dim groups to size (:class:`~graphprune.validation.sizes.DimGroup`)."""
        fallback, failed = None, []
        for sizes, how in candidates:
            if not self._affordable(sizes):
                continue
            outcome = self._run(sizes)
            if outcome.ok and self._agrees(outcome):
                return sizes, how if fallback is None else f"{how} with the declared output shapes"
            if outcome.ok and fallback is None:
                fallback = (sizes, f"{how}; its outputs differ from the shapes the model declares")
            if not outcome.ok and outcome.failed_node is not None and outcome.failed_node not in dict(failed):
                failed.append((outcome.failed_node, sizes))
        return fallback or self._solve(free, failed)

    def failure(self) -> str:
        """What was tried (sizes of the free groups, ``x``-separated) and onnxruntime's last refusal."""
        tried = "; ".join("x".join(str(v) for v in sizes.values()) for sizes in self.tried[:8])
        more = f" and {len(self.tried) - 8} more" if len(self.tried) > 8 else ""
        last = f"; onnxruntime: {self.refusals[-1]}" if self.refusals else ""
        return f"tried {tried}{more}{last}"

    def _run(self, sizes: Sizes) -> Outcome:
        self.tried.append(sizes)
        outcome = self.probe.run(self.shapes_of(sizes))
        if not outcome.ok:
            self.refusals.append(self._readable(outcome))
        return outcome

    def _readable(self, outcome: Outcome) -> str:
        """onnxruntime's message with the refusing node's own name instead of its probe number."""
        if outcome.failed_node is None:
            return outcome.message
        name = self.model.graph.node[outcome.failed_node].name
        return outcome.message.replace(f"Name:'{PROBE_NODE_PREFIX}{outcome.failed_node}'", f"Name:'{name}'")

    def _agrees(self, outcome: Outcome) -> bool:
        for name, dims in self.declared.items():
            shape = outcome.output_shapes.get(name)
            if shape is None:
                continue
            if len(shape) != len(dims) or any(isinstance(d, int) and d != s for d, s in zip(dims, shape)):
                return False
        return True

    def _affordable(self, sizes: Sizes) -> bool:
        return all(element_count(shape) <= MAX_PROBE_ELEMENTS for shape in self.shapes_of(sizes).values())

    def _solve(self, free: list, failed: list[tuple[int, Sizes]]) -> tuple[Sizes, str] | None:
        """Meet the size the refusing node fixes; a new refusing node is solved in turn."""
        consts = ModelConstants(self.model, [s.name for s in self.specs])
        heights = {keys[0] for keys in image_axes(self.specs, free) if len(keys) == 2}
        ratios = ASPECT_RATIOS if heights else (1.0,)
        queue, solved = list(failed), set()
        while queue and len(solved) < MAX_SOLVED_NODES and self.probe.runs < MAX_PROBE_RUNS:
            index, at = queue.pop(0)
            if index in solved:
                continue
            solved.add(index)
            for constraint in node_constraints(consts, self.model.graph.node[index], index):
                if self.probe.measure(constraint, self.shapes_of(at)) == constraint.target:
                    continue  # met where the node refused: not the reason
                for ratio in ratios:
                    size = self._search(constraint, free, heights, ratio)
                    if size is None:
                        continue
                    sizes = _assign(free, heights, size, ratio)
                    outcome = self._run(sizes)
                    if outcome.ok:
                        return sizes, f"{constraint.describe()}"
                    if outcome.failed_node is not None:
                        queue.append((outcome.failed_node, sizes))
        return None

    def _search(self, constraint: Constraint, free: list, heights: set, ratio: float) -> int | None:
        """The size (see module docstring) at which ``constraint`` is met, or None."""
        def measure(size: int) -> int | None:
            return self.probe.measure(constraint, self.shapes_of(_assign(free, heights, size, ratio)))

        def reached(size: int) -> bool:
            value = measure(size)
            return value is not None and value >= constraint.target

        low, high = 0, 1
        while not reached(high):
            low, high = high, high * 2
            if not self._affordable(_assign(free, heights, high, ratio)) or self.probe.runs >= MAX_PROBE_RUNS:
                return None
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (low, middle) if reached(middle) else (middle, high)
        if measure(high) != constraint.target:
            return None
        for step in ROUND_STEPS:
            rounded = -(-high // step) * step
            if self._affordable(_assign(free, heights, rounded, ratio)) and measure(rounded) == constraint.target:
                return rounded
        return high


def _assign(free: list, heights: set, size: int, ratio: float) -> Sizes:
    """Every free group at ``size``; image heights at ``size * ratio``."""
    return {g.key: max(1, round(size * ratio)) if g.key in heights else size for g in free}
