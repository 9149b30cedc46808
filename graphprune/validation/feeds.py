"""Seeded random feeds for a model, at concrete input shapes.

A *feed* is one ``dict[input name, np.ndarray]`` for one ``session.run``. Dynamic dimensions
are resolved by :func:`graphprune.validation.sizes.resolve_input_shapes`: the user's
``input_shapes``, batch 1, then sizes graphprune finds the model runs with.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx

from ..errors import UsageError
from .inputs import (INT_HIGH, InputSpec, check_input_shapes, model_inputs, parse_input_shape, parse_input_shapes,
                     random_array)
from .sizes import ResolvedShapes, resolve_input_shapes

log = logging.getLogger(__name__)


def resolve_shapes(model: onnx.ModelProto, input_shapes: Mapping | None = None) -> dict[str, tuple[int, ...]]:
    """Concrete shapes of every real input, validated against the model (see :func:`resolve_input_shapes`)."""
    return dict(resolve_input_shapes(model, input_shapes).shapes)


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
    rng = np.random.default_rng(seed)
    feeds = [{s.name: random_array(rng, resolved.shapes[s.name], s.dtype) for s in specs} for _ in range(samples)]
    log.debug("made %d random feeds (seed %d): %s", samples, seed, resolved.describe())
    return feeds, resolved


__all__ = ["INT_HIGH", "InputSpec", "ResolvedShapes", "check_input_shapes", "make_feeds", "model_inputs",
           "parse_input_shape", "parse_input_shapes", "random_array", "random_feeds", "resolve_input_shapes",
           "resolve_shapes"]
