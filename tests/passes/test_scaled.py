"""passes/absorbers.scaled: a weight times a per-channel scale, computed in float64 and rounded once."""
from __future__ import annotations

import numpy as np
import pytest

from graphprune.passes.absorbers import scaled


@pytest.mark.parametrize("weight_shape, scale_shape", [
    ((16, 8, 3, 3), (16, 1, 1, 1)),   # a Conv's output channels: the 8x3x3 block merges into one loop
    ((16, 8, 3, 3), (1, 8, 1, 1)),    # a Conv's input channels
    ((16, 8, 3, 3), (16, 8, 1, 1)),
    ((32, 12), (32, 1)),              # Gemm rows and columns: nothing to merge
    ((12, 32), (1, 32)),
    ((16, 8, 3, 3), (8, 1, 1)),       # a scale of lower rank broadcasts as it is
])
def test_the_product_is_the_float64_product_rounded_once(weight_shape, scale_shape):
    rng = np.random.default_rng(3)
    weight = rng.standard_normal(weight_shape).astype(np.float32)
    scale = rng.uniform(0.1, 3.0, scale_shape)
    out = scaled(weight, scale)
    expected = (weight.astype(np.float64) * scale).astype(np.float32)
    assert out.dtype == np.float32 and out.shape == weight_shape
    assert out.tobytes() == expected.tobytes()
    # float32 arithmetic would differ in the last bit somewhere: the test can tell the two apart
    assert (weight * scale.astype(np.float32)).tobytes() != expected.tobytes()


def test_a_weight_that_is_not_contiguous_gives_the_same_product():
    weight = np.random.default_rng(4).standard_normal((6, 4, 3, 3)).astype(np.float32)[:, :, ::-1, :]
    scale = np.linspace(0.5, 2.0, 6).reshape(6, 1, 1, 1)
    assert scaled(weight, scale).tobytes() == (weight.astype(np.float64) * scale).astype(np.float32).tobytes()
