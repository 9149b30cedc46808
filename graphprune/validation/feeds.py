"""Graph inputs as data: their dtypes and shapes, fixed shapes, and seeded random feeds.

A *feed* is one ``dict[input name, np.ndarray]`` for one ``session.run``. Dynamic dimensions
are resolved in this order: the user's ``input_shapes``; batch (axis 0) defaults to 1; any other
dynamic axis is a usage error that says which option fixes it.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import DataError, UsageError
from ..vocabulary import MASK_INPUT_NAMES

log = logging.getLogger(__name__)

#: random integer inputs are drawn from [0, INT_HIGH) (valid indices for most embeddings/gathers)
INT_HIGH = 10

Dim = int | str | None  # int: fixed; str: symbolic name; None: unknown


@dataclass(frozen=True)
class InputSpec:
    """One real graph input (initializers excluded)."""

    name: str
    dtype: np.dtype
    #: None when the model declares no shape (unknown rank)
    dims: tuple[Dim, ...] | None

    @property
    def is_static(self) -> bool:
        return self.dims is not None and all(isinstance(d, int) for d in self.dims)


def _dim(d: onnx.TensorShapeProto.Dimension) -> Dim:
    if d.HasField("dim_value") and d.dim_value > 0:
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param:
        return d.dim_param
    return None


def _np_dtype(elem_type: int, name: str) -> np.dtype:
    try:
        dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"input {name!r}: element type {elem_type} has no numpy equivalent") from exc
    if dtype.kind in "OUS":
        raise DataError(f"input {name!r}: string inputs are not supported for random or file data")
    return dtype


def model_inputs(model: onnx.ModelProto) -> list[InputSpec]:
    """The model's real inputs (graph inputs that are not initializers), in graph order."""
    inits = {t.name for t in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            raise DataError(f"input {vi.name!r} is not a tensor (sequence/map inputs are not supported)")
        tt = vi.type.tensor_type
        dims = tuple(_dim(d) for d in tt.shape.dim) if tt.HasField("shape") else None
        specs.append(InputSpec(vi.name, _np_dtype(tt.elem_type, vi.name), dims))
    return specs


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """Parse ``name:1x3x224x224`` (``,`` also separates dims) into ``(name, (1, 3, 224, 224))``."""
    name, sep, dims = text.rpartition(":")
    if not sep or not name or not dims:
        raise UsageError(f"--input-shape {text!r}: expected NAME:DIMS, e.g. input:1x3x224x224")
    try:
        shape = tuple(int(d) for d in dims.replace(",", "x").split("x"))
    except ValueError as exc:
        raise UsageError(f"--input-shape {text!r}: dims must be integers separated by 'x'") from exc
    if any(d <= 0 for d in shape):
        raise UsageError(f"--input-shape {text!r}: every dim must be positive")
    return name, shape


def parse_input_shapes(items) -> dict[str, tuple[int, ...]] | None:
    """Parse a list of ``--input-shape`` values (None or empty list -> None)."""
    if not items:
        return None
    return dict(parse_input_shape(item) for item in items)


def check_input_shapes(specs: list[InputSpec], input_shapes: Mapping | None) -> None:
    """Reject shapes for unknown inputs or of the wrong rank / conflicting with fixed dims."""
    if not input_shapes:
        return
    by_name = {s.name: s for s in specs}
    for name, shape in input_shapes.items():
        spec = by_name.get(name)
        if spec is None:
            raise UsageError(f"input shape given for {name!r}, but the model's inputs are {sorted(by_name)}")
        shape = tuple(shape)
        if spec.dims is None:
            continue
        if len(shape) != len(spec.dims):
            raise UsageError(f"input {name!r} has rank {len(spec.dims)} ({_fmt_dims(spec.dims)}); "
                             f"the given shape {_fmt_dims(shape)} has rank {len(shape)}")
        for axis, (fixed, given) in enumerate(zip(spec.dims, shape)):
            if isinstance(fixed, int) and fixed != given:
                raise UsageError(f"input {name!r} axis {axis} is fixed to {fixed} in the model; "
                                 f"the given shape {_fmt_dims(shape)} says {given}")


def _fmt_dims(dims) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def _hint(dims) -> str:
    """``1x3xHxW`` for dims ``(None, 3, 'H', 'W')``: what the user has to fill in."""
    parts = []
    for axis, d in enumerate(dims):
        parts.append(str(d) if isinstance(d, int) else "1" if axis == 0 else (d or "?"))
    return "x".join(parts)


def resolve_shape(spec: InputSpec, input_shapes: Mapping | None = None) -> tuple[int, ...]:
    """Concrete shape of one input (see module docstring for the resolution order)."""
    if input_shapes and spec.name in input_shapes:
        return tuple(int(d) for d in input_shapes[spec.name])
    if spec.dims is None:
        raise UsageError(f"input {spec.name!r} declares no shape; give it with --input-shape {spec.name}:DIMS "
                         "(API: input_shapes={name: shape})")
    shape = []
    for axis, d in enumerate(spec.dims):
        if isinstance(d, int):
            shape.append(d)
        elif axis == 0:
            shape.append(1)
        else:
            label = f"{d!r}" if d else "unknown"
            raise UsageError(
                f"input {spec.name!r} axis {axis} is dynamic ({label}); give its size with "
                f"--input-shape {spec.name}:{_hint(spec.dims)} (API: input_shapes={{name: shape}})")
    return tuple(shape)


def resolve_shapes(model: onnx.ModelProto, input_shapes: Mapping | None = None) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of every real input, validated against the model."""
    specs = model_inputs(model)
    check_input_shapes(specs, input_shapes)
    return {s.name: resolve_shape(s, input_shapes) for s in specs}


def random_array(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype,
                 int_high: int = INT_HIGH) -> np.ndarray:
    """Standard normal floats, integers in [0, int_high), fair booleans."""
    if dtype.kind == "f":
        return rng.standard_normal(shape, dtype=np.float64).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(np.bool_)
    if dtype.kind in "iu":
        return rng.integers(0, int_high, shape).astype(dtype)
    raise DataError(f"cannot generate random data of dtype {dtype}")


def _random_input(rng: np.random.Generator, spec: InputSpec, shape: tuple[int, ...], int_high: int) -> np.ndarray:
    if spec.name.lower() in MASK_INPUT_NAMES and len(shape) == 2 and spec.dtype.kind in "iufb":
        return random_mask(rng, shape, spec.dtype)
    return random_array(rng, shape, spec.dtype, int_high)


def random_mask(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A [batch, sequence] attention mask: each row 1 on a seeded number (at least one) of leading
    tokens, 0 after (padding). Random integers would make the additive mask overflow to inf and
    the outputs NaN, and NaN agrees with NaN in every comparison."""
    rows, width = shape
    lengths = rng.integers(1, width + 1, rows)
    return (np.arange(width)[None, :] < lengths[:, None]).astype(dtype)


def index_bounds(model: onnx.ModelProto) -> dict[str, int]:
    """Graph inputs read as the indices of a Gather from a constant table -> the table's size along
    the gathered axis (the smallest, when several): random indices must stay below it (a BERT's
    ``token_type_ids`` index a table of 2 rows)."""
    tables = {t.name: tuple(t.dims) for t in model.graph.initializer}
    inputs = {vi.name for vi in model.graph.input} - set(tables)
    bounds: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type != "Gather" or node.domain not in ("", "ai.onnx") or len(node.input) < 2:
            continue
        data, indices = node.input[0], node.input[1]
        if indices not in inputs or data not in tables:
            continue
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        dims = tables[data]
        size = dims[axis] if -len(dims) <= axis < len(dims) else 0
        if size > 0:
            bounds[indices] = min(bounds.get(indices, size), size)
    return bounds


def make_feeds(model: onnx.ModelProto, samples: int, seed: int = 0,
               input_shapes: Mapping | None = None) -> list[dict[str, np.ndarray]]:
    """``samples`` seeded random feeds honouring each input's dtype and (resolved) shape."""
    if samples < 1:
        raise UsageError(f"samples must be at least 1 (got {samples})")
    specs = model_inputs(model)
    check_input_shapes(specs, input_shapes)
    shapes = {s.name: resolve_shape(s, input_shapes) for s in specs}
    highs = {name: min(INT_HIGH, bound) for name, bound in index_bounds(model).items()}
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(samples):
        feeds.append({s.name: _random_input(rng, s, shapes[s.name], highs.get(s.name, INT_HIGH)) for s in specs})
    log.debug("made %d random feeds (seed %d): %s", samples, seed, shapes)
    return feeds
