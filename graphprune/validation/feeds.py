"""Seeded random feeds for a model, at concrete input shapes.

A *feed* is one ``dict[input name, np.ndarray]`` for one ``session.run``. Dynamic dimensions
are resolved by :func:`graphprune.validation.sizes.resolve_input_shapes`: the user's
``input_shapes``, batch 1, then sizes graphprune finds the model runs with. Integer inputs that
index a table stay inside it, and attention masks are 0/1 padding patterns.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx

from ..errors import UsageError
from ..vocabulary import MASK_INPUT_NAMES
from .inputs import (INT_HIGH, InputSpec, check_input_shapes, model_inputs, parse_input_shape, parse_input_shapes,
                     random_array)
from .sizes import ResolvedShapes, resolve_input_shapes

log = logging.getLogger(__name__)


def resolve_shapes(model: onnx.ModelProto, input_shapes: Mapping | None = None) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of every real input, validated against the model (see :func:`resolve_input_shapes`)."""
    return dict(resolve_input_shapes(model, input_shapes).shapes)


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
    return random_feeds(model, samples, seed, input_shapes)[0]


def random_feeds(model: onnx.ModelProto, samples: int, seed: int = 0,
                 input_shapes: Mapping | None = None) -> tuple[list[dict[str, np.ndarray]], ResolvedShapes]:
    """:func:`make_feeds` and the shapes it used (with how they were chosen)."""
    if samples < 1:
        raise UsageError(f"samples must be at least 1 (got {samples})")
    specs = model_inputs(model)
    resolved = resolve_input_shapes(model, input_shapes)
    highs = {name: min(INT_HIGH, bound) for name, bound in index_bounds(model).items()}
    rng = np.random.default_rng(seed)
    feeds = [{s.name: _random_input(rng, s, resolved.shapes[s.name], highs.get(s.name, INT_HIGH)) for s in specs}
             for _ in range(samples)]
    log.debug("made %d random feeds (seed %d): %s", samples, seed, resolved.describe())
    return feeds, resolved


__all__ = ["INT_HIGH", "InputSpec", "ResolvedShapes", "check_input_shapes", "index_bounds", "make_feeds",
           "model_inputs", "parse_input_shape", "parse_input_shapes", "random_array", "random_feeds", "random_mask",
           "resolve_input_shapes", "resolve_shapes"]
