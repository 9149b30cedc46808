"""Property-based test: random networks from the supported op set under the pruning oracle.

Hypothesis draws a network (random channel counts; plain, residual, concat, split, depthwise,
grouped, squeeze-excitation, channel-shuffle, channel-slice, pooling and activation blocks; a
flatten+Gemm, pooled Gemm or conv head; BatchNormalization kept or not; opset 9, 11, 13, 17 or
21) and checks, for each:

* pruned at a random ratio with a random criterion, the model passes the full ONNX checker,
  keeps its output names and shapes, and equals its pruning oracle (the original with every
  consumer slice of the removed slots zeroed) to ``ORACLE_RTOL``;
* pruned at ratio 0, no output changes at all.

``derandomize=True`` makes the examples a pure function of the test (reproducible in CI), and
``database=None`` keeps hypothesis from storing examples. Its pytest plugin still caches the
constants of every local module under ``./.hypothesis/constants`` while collecting, so this module
points hypothesis's home at a temporary directory when it is imported (collection imports it
first): running the tests writes nothing into the repository.
"""
from __future__ import annotations

import tempfile

import hypothesis.strategies as st
import onnx
from hypothesis import HealthCheck, configuration, given, settings

from models.builder import GraphBuilder
from tests.helpers.oracle import ORACLE_RTOL, pruning_oracle_check, ratio_zero_check

HYPOTHESIS_HOME = tempfile.TemporaryDirectory(prefix="graphprune-hypothesis-")  # removed at exit
configuration.set_hypothesis_home_dir(HYPOTHESIS_HOME.name)

ACTIVATIONS = ["relu", "relu6", "silu", "hardswish", "sigmoid", "tanh", "gelu", None]
BLOCKS = ["conv", "residual", "concat", "split", "depthwise", "activation", "pool", "grouped", "squeeze_excite",
          "shuffle", "slice"]
HEADS = ["flatten_gemm", "pooled_gemm", "conv"]
SPATIAL = 8


def _block(draw, b: GraphBuilder, x: str, c: int, hw: int) -> tuple[str, int, int]:
    """One random block; returns (tensor, channels, spatial size)."""
    kind = draw(st.sampled_from(BLOCKS))
    act = draw(st.sampled_from(ACTIVATIONS))
    channels = st.integers(4, 12)
    if kind == "conv":
        out = draw(channels)
        return b.conv_norm(x, c, out, draw(st.sampled_from([1, 3])), act=act), out, hw
    if kind == "residual":
        y = b.conv_norm(x, c, c, 3, act=act or "relu")
        y = b.conv_norm(y, c, c, 1, act=None, gain=0.5)
        return b.add(x, y), c, hw
    if kind == "concat":
        c1, c2 = draw(channels), draw(channels)
        return b.concat([b.conv_norm(x, c, c1, 1, act=act), b.conv_norm(x, c, c2, 3, act=act)]), c1 + c2, hw
    if kind == "split" and c >= 2:
        first = draw(st.integers(1, c - 1))
        a, rest = b.split(x, [first, c - first])
        c1, c2 = draw(channels), draw(channels)
        return b.concat([b.conv_norm(a, first, c1, 3, act=act), b.conv_norm(rest, c - first, c2, 1, act=act)]), \
            c1 + c2, hw
    if kind == "depthwise":
        multiplier = draw(st.sampled_from([1, 1, 2]))
        return b.conv_norm(x, c, c * multiplier, 3, groups=c, act=act), c * multiplier, hw
    if kind == "pool" and hw >= 4:
        return b.maxpool(x, 2, 2), c, hw // 2
    if kind == "grouped" and c % 2 == 0:
        out = 2 * draw(st.integers(2, 6))
        return b.conv_norm(x, c, out, 3, groups=2, act=act), out, hw
    if kind == "squeeze_excite":
        squeezed = draw(st.integers(2, 4))
        s = b.node("GlobalAveragePool", [x])
        s = b.unary("Sigmoid", b.conv(b.unary("Relu", b.conv(s, c, squeezed, 1, bias=True)), squeezed, c, 1, bias=True))
        return b.mul(x, s), c, hw
    if kind == "shuffle" and c % 2 == 0:
        y = b.reshape(x, [1, 2, c // 2, hw, hw])
        y = b.transpose(y, [0, 2, 1, 3, 4])
        return b.reshape(y, [1, c, hw, hw]), c, hw
    if kind == "slice" and c >= 3:
        start = draw(st.integers(0, c - 2))
        end = draw(st.integers(start + 1, c))
        return b.slice(x, start, end), end - start, hw
    return b.act(x, act or "relu"), c, hw


@st.composite
def networks(draw) -> onnx.ModelProto:
    b = GraphBuilder("random", opset=draw(st.sampled_from([9, 11, 13, 17, 21])), seed=draw(st.integers(0, 2**16)),
                     keep_bn=draw(st.booleans()))
    c = draw(st.integers(4, 12))
    x = b.conv_norm(b.input("x", [3, SPATIAL, SPATIAL]), 3, c, 3, act="relu")
    hw = SPATIAL
    for _ in range(draw(st.integers(1, 5))):
        x, c, hw = _block(draw, b, x, c, hw)
    head = draw(st.sampled_from(HEADS))
    classes = draw(st.integers(2, 5))
    if head == "flatten_gemm":
        x = b.gemm(b.flatten(x), c * hw * hw, classes)
    elif head == "pooled_gemm":
        x = b.gemm(b.flatten(b.node("GlobalAveragePool", [x])), c, classes)
    else:
        x = b.conv(x, c, classes, 1, bias=True)
    b.output(x, "y")
    return b.finish()


FAST = settings(derandomize=True, database=None, max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FAST
@given(model=networks(), ratio=st.sampled_from([0.25, 0.4, 0.5, 0.75]),
       importance=st.sampled_from(["l1", "l2", "random"]))
def test_random_network_prunes_to_its_oracle(model, ratio, importance):
    res = pruning_oracle_check(model, ratio=ratio, importance=importance, seed=1)  # runs the full ONNX checker
    assert [o.name for o in res.pruned.graph.output] == ["y"]
    assert res.output_shapes_equal
    assert res.max_rel_error <= ORACLE_RTOL, f"pruned model differs from its oracle by {res.max_rel_error:.3g}"
    assert res.prunable >= 1 and res.removed_slots >= 1  # the stem's group has >= 4 slots: some always go
    assert res.params_after < res.params_before


@FAST
@given(model=networks())
def test_random_network_at_ratio_zero_is_unchanged(model):
    assert ratio_zero_check(model) == 0.0
