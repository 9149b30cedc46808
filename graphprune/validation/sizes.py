"""Concrete input shapes for a model whose inputs have dynamic dims, chosen so that the model runs.

The structure of a model does not depend on the sizes of its dynamic dims; only a check that
runs it needs concrete inputs. Each dynamic dim gets, in this order:

1. the size the user gives (``input_shapes``, the CLI's ``--input-shape``), which also fixes
   every dim of the same name in the other inputs;
2. 1 for a batch dim (axis 0, and every dim sharing its name);
3. a size graphprune chooses by running the model in onnxruntime: first the sizes the model
   names itself (a Resize to constant sizes, scaled by powers of two), then a short ladder of
   plausible sizes (:data:`IMAGE_SIZES` for the height and width of 4-D/5-D inputs,
   :data:`SEQUENCE_LENGTHS` for other dims). The first that runs and whose outputs agree with
   the shapes the model declares wins. When none runs, the node that refused is read for a size
   it fixes (:mod:`~graphprune.validation.constraints`: a Reshape to a constant shape, a Gemm or
   MatMul with a constant weight, an Add/Mul with a constant table) and a size meeting it is
   searched for (bisection on the tensor's measure, for each of :data:`ASPECT_RATIOS`).

Dims sharing a name get the same size; unnamed dims (and ``?``) are independent. Only when no
size runs is the user asked for ``--input-shape``. The model is never changed: its dims stay
dynamic. :class:`ResolvedShapes` records the shapes and how they were chosen, for summaries.
"""
from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from types import MappingProxyType

import onnx

from ..errors import GraphPruneError, UsageError
from ..input_checks import CHECKER_KEEP_ELEMENTS, element_count
from ..io import model_byte_size
from .inputs import InputSpec, check_input_shapes, dims_hint, fmt_dims, model_inputs
from .size_search import SizeSearch, resize_candidates

log = logging.getLogger(__name__)

#: ladder of image heights/widths tried for the dynamic spatial dims of 4-D and 5-D inputs
IMAGE_SIZES = (224, 256, 320, 416, 512, 64, 32)
#: ladder of lengths tried for the other dynamic dims (sequence length, samples...)
SEQUENCE_LENGTHS = (16, 8, 32, 128)
#: resolutions remembered per process (a command resolves the same model several times)
CACHE_SIZE = 8
#: models up to this size (weights included) are probed on a worker thread (:class:`PendingShapes`)
BACKGROUND_PROBE_BYTES = 2**30

_CACHE: OrderedDict[str, ResolvedShapes] = OrderedDict()


@dataclass(frozen=True)
class DimGroup:
    """Dynamic dims that take one size: the dims of one name, or one unnamed dim."""

    key: str
    label: str
    role: str  # "batch" | "spatial" | "sequence"
    members: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ResolvedShapes:
    """The concrete input shapes a check used, and where they came from.

    ``source``: "model" (every dim fixed, or only batch dims, set to 1), "given" (the user's
    input shapes), "chosen" (graphprune chose sizes for dynamic dims: see ``chosen`` and
    ``how``), "data" (the shapes of the first sample of the user's data).
    """

    shapes: Mapping[str, tuple[int, ...]]
    source: str
    chosen: tuple[tuple[str, int], ...] = ()
    how: str = ""

    def __post_init__(self):
        object.__setattr__(self, "shapes", MappingProxyType(dict(self.shapes)))  # shared through the cache

    def __reduce__(self):  # a mappingproxy does not pickle: send the plain dict to worker processes
        return (type(self), (dict(self.shapes), self.source, self.chosen, self.how))

    def describe(self) -> str:
        """``x: 1x3x224x224, mask: 1x16``."""
        return ", ".join(f"{name}: {fmt_dims(shape)}" for name, shape in self.shapes.items())

    def summary(self) -> str:
        """One line for a command's summary: which input shapes the check used and why."""
        noun = "shape" if len(self.shapes) == 1 else "shapes"
        line = f"input {noun} of the checks: {self.describe()}"
        if self.source == "chosen":
            dims = ", ".join(f"{label}={size}" for label, size in self.chosen)
            line += f" (dynamic {dims}: {self.how}; --input-shape sets them)"
        elif self.source == "data":
            line += " (from the data)"
        return line

    def to_dict(self) -> dict:
        return {"shapes": {n: list(s) for n, s in self.shapes.items()}, "source": self.source,
                "chosen": dict(self.chosen), "how": self.how}


def dim_groups(specs: list[InputSpec]) -> list[DimGroup]:
    """The dynamic dims of ``specs`` grouped by name; role: batch > spatial > sequence."""
    rank = {"batch": 0, "spatial": 1, "sequence": 2}
    found: dict[str, dict] = {}
    for spec in specs:
        for axis, d in enumerate(spec.dims or ()):
            if isinstance(d, int):
                continue
            key = d if d else f"{spec.name}:{axis}"
            role = "batch" if axis == 0 else "spatial" if len(spec.dims) in (4, 5) else "sequence"
            group = found.setdefault(key, {"label": d or f"{spec.name} axis {axis}", "role": role, "members": []})
            group["members"].append((spec.name, axis))
            group["role"] = min(group["role"], role, key=rank.__getitem__)
    return [DimGroup(k, g["label"], g["role"], tuple(g["members"])) for k, g in found.items()]


def _pinned(groups: list[DimGroup], specs: list[InputSpec], given: Mapping) -> dict[str, int]:
    """Group sizes fixed by the given shapes (dims of the same name) and by batch."""
    pinned = {}
    for spec in specs:
        if spec.name in given and spec.dims is not None:
            for d, size in zip(spec.dims, given[spec.name]):
                if isinstance(d, str):
                    pinned[d] = int(size)
    for group in groups:
        if group.role == "batch":
            pinned.setdefault(group.key, 1)
    return pinned


def shapes_for(specs: list[InputSpec], groups: list[DimGroup], sizes: Mapping[str, int],
               given: Mapping) -> dict[str, tuple[int, ...]]:
    """Every input's concrete shape: given shapes as they are, dynamic dims from ``sizes``."""
    member_size = {m: sizes[g.key] for g in groups if g.key in sizes for m in g.members}
    shapes = {}
    for spec in specs:
        if spec.name in given:
            shapes[spec.name] = tuple(int(d) for d in given[spec.name])
        else:
            shapes[spec.name] = tuple(d if isinstance(d, int) else member_size[(spec.name, axis)]
                                      for axis, d in enumerate(spec.dims))
    return shapes


def resolve_input_shapes(model: onnx.ModelProto, input_shapes: Mapping | None = None) -> ResolvedShapes:
    """Concrete shapes of every real input of ``model`` (see module docstring). A resolution given
    as ``input_shapes`` (made once per command for the model as given) is used as it is."""
    found = _settled(model, input_shapes)
    if isinstance(found, ResolvedShapes):
        return found
    return _remember(found.key, _choose(model, found))


class PendingShapes:
    """:func:`resolve_input_shapes` begun now: when sizes must be tried, onnxruntime tries them on a
    worker thread (it releases the GIL while it makes and runs the probe's session), so that a
    command prepares and analyses the model meanwhile; :meth:`result` waits for them.

    Shapes that need no probe (fixed or given dims, batch only, or a model resolved before in this
    process) are ready at once. A model above :data:`BACKGROUND_PROBE_BYTES` is probed here, before
    the constructor returns, so that the probe's copy of its weights never adds to a pruning's peak.
    The worker reads the model and never edits it (the probe gets the model's bytes with its nodes
    numbered, made here). An error (no size runs) is raised by :meth:`result`, as
    :func:`resolve_input_shapes` raises it."""

    def __init__(self, model: onnx.ModelProto, input_shapes: Mapping | None = None):
        found = _settled(model, input_shapes)
        self._future, self._key = None, None
        if isinstance(found, ResolvedShapes):
            self._value = found
        elif model_byte_size(model) > BACKGROUND_PROBE_BYTES:
            self._value = _remember(found.key, _choose(model, found))
        else:
            from .probe import numbered_bytes
            from .runner import on_worker

            self._future = on_worker("graphprune-sizes", _choose, model, found, numbered_bytes(model))
            self._key = found.key
        #: True when the shapes were known without a worker (stays so after :meth:`result`)
        self.ready = self._future is None

    def result(self) -> ResolvedShapes:
        if self._future is not None:
            future, self._future = self._future, None
            self._value = _remember(self._key, future.result())
        return self._value

    def after(self, then: Callable[[ResolvedShapes], object]) -> Future:
        """``then(shapes)`` called as soon as the shapes are known (on the worker that found them,
        or here when they are known already); its result, or what it or the probe raised, in a Future."""
        out: Future = Future()

        def run(found: Future) -> None:
            try:
                out.set_result(then(found.result()))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the Future
                out.set_exception(exc)

        source = self._future
        if source is None:  # known already: ``run`` is called at once, here
            source = Future()
            source.set_result(self._value)
        source.add_done_callback(run)
        return out


@dataclass(frozen=True)
class _Unsettled:
    """What trying sizes needs: the inputs, their dim groups, the sizes pinned, and the cache key."""

    specs: list[InputSpec]
    groups: list[DimGroup]
    pinned: dict[str, int]
    given: dict[str, tuple[int, ...]]
    key: str


def _settled(model: onnx.ModelProto, input_shapes: Mapping | None) -> ResolvedShapes | _Unsettled:
    """The shapes when no size needs trying (fixed, given, batch only, or resolved before), else
    what trying them needs; errors in the given shapes are raised here."""
    if isinstance(input_shapes, ResolvedShapes):
        return input_shapes
    specs = model_inputs(model)
    check_input_shapes(specs, input_shapes)
    given = {name: tuple(int(d) for d in shape) for name, shape in (input_shapes or {}).items()}
    for spec in specs:
        if spec.dims is None and spec.name not in given:
            raise UsageError(f"input {spec.name!r} declares no shape; give it with --input-shape {spec.name}:DIMS "
                             "(API: input_shapes={name: shape})")
    groups = dim_groups([s for s in specs if s.name not in given])
    pinned = _pinned(groups, specs, given)
    if all(g.key in pinned for g in groups):
        return ResolvedShapes(shapes_for(specs, groups, pinned, given), "given" if given else "model")
    key = _fingerprint(model, given)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    return _Unsettled(specs, groups, pinned, given, key)


def _remember(key: str, resolved: ResolvedShapes) -> ResolvedShapes:
    _CACHE[key] = resolved
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return resolved


def _choose(model: onnx.ModelProto, found: _Unsettled, numbered: bytes | None = None) -> ResolvedShapes:
    """Search sizes for the groups not pinned (module docstring, step 3); UsageError when none runs.
    ``numbered``: the model's bytes for the probe (see :class:`~graphprune.validation.probe.Probe`)."""
    specs, groups, pinned, given = found.specs, found.groups, found.pinned, found.given
    free = [g for g in groups if g.key not in pinned]
    try:
        search = SizeSearch(model, specs, lambda sizes: shapes_for(specs, groups, {**pinned, **sizes}, given),
                            numbered)
    except GraphPruneError as exc:
        raise _ask_for_shape(specs, free, f"onnxruntime cannot run the model to try sizes: {exc}") from exc
    found_sizes = search.find(free, _candidates(model, specs, free))
    if found_sizes is None:
        raise _ask_for_shape(specs, free, search.failure())
    sizes, how = found_sizes
    chosen = tuple((g.label, sizes[g.key]) for g in free)
    resolved = ResolvedShapes(shapes_for(specs, groups, {**pinned, **sizes}, given), "chosen", chosen, how)
    log.info("dynamic input dims %s set to %s (%s, after %d onnxruntime run(s)); --input-shape sets them",
             ", ".join(g.label for g in free), ", ".join(str(s) for _, s in chosen), how, search.probe.runs)
    return resolved


def _candidates(model: onnx.ModelProto, specs: list[InputSpec], free: list[DimGroup]) -> list[tuple[dict, str]]:
    """Sizes to try, in order: the model's own Resize sizes (scaled), then the ladders."""
    out = resize_candidates(model, specs, free)
    for i in range(max(len(IMAGE_SIZES), len(SEQUENCE_LENGTHS))):
        sizes = {}
        for g in free:
            ladder = IMAGE_SIZES if g.role == "spatial" else SEQUENCE_LENGTHS
            sizes[g.key] = ladder[min(i, len(ladder) - 1)]
        out.append((sizes, "the first of the sizes tried that runs" if out else "the first size tried"))
    unique, seen = [], set()
    for sizes, how in out:
        marker = tuple(sorted(sizes.items()))
        if marker not in seen:
            seen.add(marker)
            unique.append((sizes, how))
    return unique


def _ask_for_shape(specs: list[InputSpec], free: list[DimGroup], reason: str) -> UsageError:
    name, axis = free[0].members[0]
    spec = next(s for s in specs if s.name == name)
    label = f"{spec.dims[axis]!r}" if spec.dims[axis] else "unknown"
    return UsageError(f"input {name!r} axis {axis} is dynamic ({label}) and no size graphprune tried runs "
                      f"({reason}); give its size with --input-shape {name}:{dims_hint(spec.dims)} "
                      "(API: input_shapes={name: shape})")


def _fingerprint(model: onnx.ModelProto, given: Mapping) -> str:
    """Hash of everything that decides which sizes run: nodes, interface, small constants, weight dims."""
    digest = hashlib.sha256(repr(sorted(given.items())).encode())
    graph = model.graph
    for part in (graph.input, graph.output, graph.node, model.opset_import, model.functions):
        for item in part:
            digest.update(item.SerializeToString())
    for tensor in graph.initializer:
        small = element_count(tensor.dims) <= CHECKER_KEEP_ELEMENTS
        digest.update(tensor.SerializeToString() if small else f"{tensor.name}{list(tensor.dims)}".encode())
    return digest.hexdigest()
