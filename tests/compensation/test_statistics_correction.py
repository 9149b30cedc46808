"""Statistics correction: kept producer outputs get back their calibration mean and variance."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from graphprune.calibration import SpaceStats
from graphprune.compensation.statistics import SCALE_LIMIT, affine_correction
from graphprune.graph.model import to_proto
from graphprune.pipeline.analyze import analyze
from graphprune.pipeline.apply import apply
from graphprune.pipeline.load import load
from graphprune.pipeline.options import Options
from graphprune.pipeline.prepare import prepare
from graphprune.rules.base import Space
from tests.helpers.repair import channel_stats, feeds, initializer, make_model, run


def _stats(values: np.ndarray) -> SpaceStats:
    stats = SpaceStats(Space("t", 1), values.shape[1])
    stats.update(values)
    return stats


def test_affine_correction_known_answer():
    """Original mean 2, std 3; pruned mean 1, std 1.5 -> a = 2, b = 0. A dead channel is only shifted,
    a scale past the limit is clipped, a removed position is left alone."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((1, 4, 5000))
    z = (z - z.mean(axis=2, keepdims=True)) / z.std(axis=2, keepdims=True)
    original = _stats(np.concatenate([2 + 3 * z[:, :1], 1 + z[:, 1:2], 50 * z[:, 2:3], z[:, 3:]], axis=1))
    pruned = _stats(np.concatenate([1 + 1.5 * z[:, :1], 0 * z[:, 1:2] + 4, z[:, 2:3], 7 * z[:, 3:]], axis=1))
    a, b, clipped = affine_correction(original, pruned, np.array([0, 1, 2]))
    np.testing.assert_allclose(a, [2.0, 1.0, SCALE_LIMIT, 1.0], rtol=1e-9)
    np.testing.assert_allclose(b, [0.0, 1 - 4, 0.0, 0.0], atol=1e-9)
    assert clipped == 1


def _conv_chain(*, bias: bool, batchnorm: bool, seed: int = 0):
    """x [1,3,6,6] -> conv1 (3->4) [-> BatchNormalization] -> relu -> conv2 (4->4, bias or not) -> relu -> conv3 -> y."""
    rng = np.random.default_rng(seed)
    inits = {"w1": rng.standard_normal((4, 3, 1, 1)), "w2": rng.standard_normal((4, 4, 3, 3)) / 3,
             "w3": rng.standard_normal((2, 4, 1, 1))}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h1"], name="conv1")]
    relu_in = "h1"
    if batchnorm:
        inits.update(bn_scale=rng.uniform(0.5, 2, 4), bn_bias=rng.standard_normal(4), bn_mean=rng.standard_normal(4),
                     bn_var=rng.uniform(0.5, 2, 4))
        nodes.append(helper.make_node("BatchNormalization", ["h1", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
                                      ["n1"], name="bn"))
        relu_in = "n1"
    conv2 = ["a1", "w2"] + (["b2"] if bias else [])
    if bias:
        inits["b2"] = rng.standard_normal(4)
    nodes += [helper.make_node("Relu", [relu_in], ["a1"], name="relu1"),
              helper.make_node("Conv", conv2, ["h2"], name="conv2", pads=[1, 1, 1, 1]),
              helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
              helper.make_node("Conv", ["a2", "w3"], ["y"], name="conv3")]
    return make_model(nodes, inits, [1, 3, 6, 6], [1, 2, 6, 6])


@pytest.mark.parametrize("bias,batchnorm", [(True, False), (False, True)])
def test_kept_channels_get_back_their_calibration_mean_and_variance(bias, batchnorm):
    """Removing a channel of a1 shifts and shrinks every channel of h2 (conv2's output) and of y; after
    the correction both have the original's per-channel mean and standard deviation on the calibration
    samples. conv2 without a bias gets one; an exporter's BatchNormalization folded into conv1 is no
    obstacle (the corrected model has none)."""
    model = _conv_chain(bias=bias, batchnorm=batchnorm)
    calib = feeds(model, 8, seed=1, mean=0.5)
    options = Options(calib=calib, repair="statistics")
    analyzed = analyze(prepare(load(model), options), options)
    space = Space("a1", 1)
    group = analyzed.analysis.groups[analyzed.analysis.space_group[space]]
    pruned = apply(analyzed, {group.id: np.unique(group.slot_of[space][[2]])}, options)
    written = to_proto(pruned.model)
    assert pruned.repair.statistics.corrected == ["conv2", "conv3"]
    assert [n.op_type for n in written.graph.node] == ["Conv", "Relu", "Conv", "Relu", "Conv"]
    assert initializer(written, "w2").shape == (4, 3, 3, 3)
    assert len(initializer(written, next(n for n in written.graph.node if n.name == "conv2").input[2])) == 4
    for tensor in ("h2", "y"):
        before, after = channel_stats(run(model, calib, tensor), 1), channel_stats(run(written, calib, tensor), 1)
        np.testing.assert_allclose(after[0], before[0], rtol=1e-4, atol=1e-4 * before[1].max())
        np.testing.assert_allclose(after[1], before[1], rtol=1e-4)
    assert pruned.repair.statistics.mismatch[0] > 0.05, "there was a shift to correct"
    np.testing.assert_allclose(run(pruned.oracle_reference.to_proto(), calib[:2]), run(written, calib[:2]), rtol=1e-5,
                               atol=1e-5)


def test_a_matmul_producer_without_bias_keeps_its_add_and_stays_valid():
    """MatMul has no bias input: the correction's shift stays an Add after it, and the model is valid."""
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="mm1"),
             helper.make_node("Relu", ["h"], ["a"], name="relu"),
             helper.make_node("MatMul", ["a", "w2"], ["y"], name="mm2")]
    model = make_model(nodes, {"w1": rng.standard_normal((3, 5)), "w2": rng.standard_normal((5, 2))}, [32, 3], [32, 2])
    calib = feeds(model, 4, seed=3, mean=1.0)
    options = Options(calib=calib, repair="statistics")
    analyzed = analyze(prepare(load(model), options), options)
    space = Space("a", 1)
    group = analyzed.analysis.groups[analyzed.analysis.space_group[space]]
    pruned = apply(analyzed, {group.id: np.unique(group.slot_of[space][[0, 1]])}, options)
    written = to_proto(pruned.model)
    assert pruned.repair.statistics.corrected == ["mm2"]
    assert [n.op_type for n in written.graph.node] == ["MatMul", "Relu", "MatMul", "Add"]
    before, after = run(model, calib).reshape(-1, 2), run(written, calib).reshape(-1, 2)
    np.testing.assert_allclose(after.mean(axis=0), before.mean(axis=0), atol=1e-4 * before.std())
    np.testing.assert_allclose(after.std(axis=0), before.std(axis=0), rtol=1e-4)


def test_a_producer_in_a_group_without_slots_asks_its_rule():
    """A group with an unknown size has no slots (ultraface's heads); whether a producer slice maps one
    to one onto the output then comes from the node's rule: conv2's weight rows and bias do."""
    from graphprune.compensation.apply import maps_one_to_one
    from graphprune.compensation.statistics import producer_outputs

    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h1"], name="conv1"),
             helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             helper.make_node("Conv", ["a1", "w2", "b2"], ["y"], name="conv2")]
    model = make_model(nodes, {"w1": rng.standard_normal((4, 2, 1, 1)), "w2": rng.standard_normal((3, 4, 1, 1)),
                               "b2": rng.standard_normal(3)}, [1, 2, 5, 5], [1, 3, 5, 5])
    options = Options()
    analysis = analyze(prepare(load(model), options), options).analysis
    group = analysis.groups[analysis.space_group[Space("y", 1)]]
    group.slot_of = {}  # as if a size in the group were unknown
    assert maps_one_to_one(analysis, Space("y", 1), Space("w2", 0))
    assert maps_one_to_one(analysis, Space("y", 1), Space("b2", 0))
    assert not maps_one_to_one(analysis, Space("y", 1), Space("w2", 1)), "the consumer axis is another link"
    sites, skipped = producer_outputs(analysis, {"conv2"})
    assert [(s.node, s.output) for s in sites] == [("conv2", Space("y", 1))] and not skipped
    assert sorted(p.initializer for p in sites[0].slices) == ["b2", "w2"]
