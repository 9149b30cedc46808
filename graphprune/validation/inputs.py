"""Graph inputs as data: their names, dtypes and declared dims, ``--input-shape`` parsing, random arrays.

Declared dims read as: a positive ``dim_value`` is fixed; a ``dim_param`` is a symbolic name
(dims of the same name have the same size); anything else, including the ``dim_value: -1``
that older exporters write for a dynamic dim, is unknown.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import DataError, UsageError

#: random integer inputs are drawn from [0, INT_HIGH) (valid indices for most embeddings/gathers)
INT_HIGH = 10
#: symbolic names that mean "unknown", not "same size as every other dim of this name"
UNNAMED_DIMS = ("", "?")

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


def read_dim(d: onnx.TensorShapeProto.Dimension) -> Dim:
    """A declared dim: int when fixed and positive, its name when symbolic, else None."""
    if d.HasField("dim_value") and d.dim_value > 0:
        return int(d.dim_value)
    if d.HasField("dim_param") and d.dim_param not in UNNAMED_DIMS and not d.dim_param.startswith("unk__"):
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
        dims = tuple(read_dim(d) for d in tt.shape.dim) if tt.HasField("shape") else None
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
            raise UsageError(f"input {name!r} has rank {len(spec.dims)} ({fmt_dims(spec.dims)}); "
                             f"the given shape {fmt_dims(shape)} has rank {len(shape)}")
        for axis, (fixed, given) in enumerate(zip(spec.dims, shape)):
            if isinstance(fixed, int) and fixed != given:
                raise UsageError(f"input {name!r} axis {axis} is fixed to {fixed} in the model; "
                                 f"the given shape {fmt_dims(shape)} says {given}")


def fmt_dims(dims) -> str:
    return "x".join("?" if d is None else str(d) for d in dims)


def dims_hint(dims) -> str:
    """``1x3xHxW`` for dims ``(None, 3, 'H', 'W')``: what the user has to fill in."""
    parts = []
    for axis, d in enumerate(dims):
        parts.append(str(d) if isinstance(d, int) else "1" if axis == 0 else (d or "?"))
    return "x".join(parts)


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
