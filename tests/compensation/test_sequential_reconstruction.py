"""Sequential reconstruction: consumers re-fitted, layer by layer, on the inputs of the pruned model."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper

from graphprune.compensation import RepairState
from graphprune.compensation.sequential import ROW_LIMIT, CrossMoments, reconstruct, reconstruction_sites
from graphprune.compensation.staged import partition
from graphprune.graph.model import to_proto
from graphprune.pipeline.analyze import analyze
from graphprune.pipeline.apply import apply
from graphprune.pipeline.load import load
from graphprune.pipeline.options import Options
from graphprune.pipeline.prepare import prepare
from graphprune.rules.base import Space
from tests.helpers.repair import feeds, make_model, relative_rms, run


def _dense_with_combination(seed: int = 6):
    """x [16, 3] -> Gemm(w1, b1) -> h [16, 4] -> MatMul(w2) -> y: h3 = (h0 - 2 h1) / 10 + 1 exactly."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((4, 3))
    b1 = np.array([0.1, 0.2, -0.3, 0.0])
    w1[3] = (w1[0] - 2 * w1[1]) / 10
    b1[3] = (b1[0] - 2 * b1[1]) / 10 + 1.0
    w2 = rng.standard_normal((4, 2))
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("MatMul", ["h", "w2"], ["y"], name="fc2")]
    return make_model(nodes, {"w1": w1, "b1": b1, "w2": w2}, [16, 3], [16, 2])


def _analyzed(model, **options):
    opts = Options(**options)
    return analyze(prepare(load(model), opts), opts), opts


def _removing(analyzed, tensor: str, axis: int, positions) -> dict:
    analysis = analyzed.analysis
    group = analysis.groups[analysis.space_group[Space(tensor, axis)]]
    return {group.id: np.unique(group.slot_of[Space(tensor, axis)][list(positions)])}


def test_a_channel_that_is_a_combination_of_kept_ones_is_rebuilt_exactly():
    model = _dense_with_combination()
    calib, evaluation = feeds(model, 6, seed=1), feeds(model, 3, seed=2)
    analyzed, _ = _analyzed(model)
    state = RepairState(analyzed.prepared.model, analyzed.analysis, _removing(analyzed, "h", 1, [3]))
    reference = to_proto(analyzed.prepared.model)
    plain_error = relative_rms(run(model, evaluation), run(state.pruned_proto(), evaluation))
    report = reconstruct(state, reference, lambda: iter(calib), ridge=0.0, removed_ridge=0.0)
    assert report.refitted == ["fc2"] and report.stages == 2 and report.unexplained < 1e-9
    assert plain_error > 0.1
    assert relative_rms(run(model, evaluation), run(state.pruned_proto(), evaluation)) < 1e-5


def test_through_the_apply_stage_only_the_ridge_separates_it_from_exact():
    """The default ridges (kept rows 1e-2, removed rows 1e-4 of the variance) leave a small error; the
    written model is valid, smaller, and matches its oracle."""
    model = _dense_with_combination()
    calib, evaluation = feeds(model, 6, seed=1), feeds(model, 3, seed=2)
    analyzed, options = _analyzed(model, calib=calib, repair="sequential")
    pruned = apply(analyzed, _removing(analyzed, "h", 1, [3]), options)
    assert pruned.repair.sequential.refitted == ["fc2"]
    assert pruned.changed[Space("w2", 0)].tolist() == [0, 1, 2]
    from graphprune.graph.model import to_proto as proto_of

    written = proto_of(pruned.model)
    assert relative_rms(run(model, evaluation), run(written, evaluation)) < 1e-3
    np.testing.assert_allclose(run(pruned.oracle_reference.to_proto(), evaluation), run(written, evaluation), rtol=1e-5,
                               atol=1e-6)


def test_cross_moments_fit_known_map():
    """x = [t0, t1, 2 t0 - t1 + 0.5] with t = x's first two positions: M and c are exact, nothing left."""
    rng = np.random.default_rng(3)
    t = rng.standard_normal((1, 2, 40))
    x = np.concatenate([t, 2 * t[:, :1] - t[:, 1:] + 0.5], axis=1)
    moments = CrossMoments(Space("a", 1), 3, np.array([0, 1]))
    moments.update(x, x, sample=0)
    matrix, intercept, left = moments.fit(ridge=0.0, removed_ridge=0.0)
    np.testing.assert_allclose(matrix, [[1, 0], [0, 1], [2, -1]], atol=1e-9)
    np.testing.assert_allclose(intercept, [0, 0, 0.5], atol=1e-9)
    assert left == pytest.approx(0.0, abs=1e-9)
    shrunk, _, _ = moments.fit(ridge=10.0, removed_ridge=10.0)
    np.testing.assert_allclose(shrunk[:2], np.eye(2), atol=1e-9)   # kept rows: pulled towards themselves
    assert 0 < np.abs(shrunk[2]).max() < np.abs(matrix[2]).max()   # removed rows: towards 0


def test_cross_moments_leave_padded_tokens_out():
    """Tokens [batch 1, sequence 5, channels 3], the last two padded: only the 3 real tokens are rows,
    so the known map is fitted exactly although the padded positions follow no map at all."""
    rng = np.random.default_rng(4)
    t = rng.standard_normal((1, 5, 2))
    x = np.concatenate([t, 2 * t[:, :, :1] - t[:, :, 1:] + 0.5], axis=2)
    x[:, 3:] = rng.standard_normal((1, 2, 3)) * 100.0              # padded positions: noise
    valid = np.array([1, 1, 1, 0, 0], bool).reshape(1, 5, 1)        # broadcast along the channel axis
    moments = CrossMoments(Space("a", 2), 3, np.array([0, 1]))
    moments.update(x, x, sample=0, valid=valid)
    assert moments.count == 3
    np.testing.assert_allclose(moments.sum_x, x[0, :3].sum(axis=0))
    matrix, intercept, left = moments.fit(ridge=0.0, removed_ridge=0.0)
    np.testing.assert_allclose(matrix, [[1, 0], [0, 1], [2, -1]], atol=1e-8)
    np.testing.assert_allclose(intercept, [0, 0, 0.5], atol=1e-8)
    everything = CrossMoments(Space("a", 2), 3, np.array([0, 1]))
    everything.update(x, x, sample=0)
    assert everything.count == 5 and abs(everything.fit(ridge=0.0, removed_ridge=0.0)[0][2, 0] - 2) > 0.01


def test_cross_moments_row_limit_is_per_batch_item():
    """ROW_LIMIT rows per item of a sample's batch: 4 sentences of 300 tokens keep all 1200 rows (a
    batch of sentences is one sample), one image of 40 x 40 positions keeps ROW_LIMIT of its 1600."""
    assert ROW_LIMIT == 1024
    rng = np.random.default_rng(5)
    tokens = rng.standard_normal((4, 300, 3))
    batch = CrossMoments(Space("a", 2), 3, np.array([0, 1]))
    batch.update(tokens, tokens, sample=0)
    assert batch.count == 1200
    np.testing.assert_allclose(batch.sum_x, tokens.reshape(-1, 3).sum(axis=0))
    image = rng.standard_normal((1, 3, 40, 40))
    one = CrossMoments(Space("a", 1), 3, np.array([0, 1]))
    one.update(image, image, sample=0)
    assert one.count == ROW_LIMIT


def _three_convs(group: int = 1):
    """x -> conv1 -> relu -> conv2 (group) -> relu -> conv3 -> y, 1x1 convolutions, 4 channels."""
    rng = np.random.default_rng(0)
    w1, w2, w3 = rng.standard_normal((4, 2, 1, 1)), rng.standard_normal((4, 4 // group, 1, 1)), \
        rng.standard_normal((3, 4, 1, 1))
    nodes = [helper.make_node("Conv", ["x", "w1"], ["h1"], name="conv1"),
             helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             helper.make_node("Conv", ["a1", "w2"], ["h2"], name="conv2", group=group),
             helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
             helper.make_node("Add", ["a2", "a1"], ["s"], name="skip"),
             helper.make_node("Conv", ["s", "w3"], ["y"], name="conv3")]
    return make_model(nodes, {"w1": w1, "w2": w2, "w3": w3}, [1, 2, 5, 5], [1, 3, 5, 5])


def test_stages_cut_the_graph_at_the_consumers():
    model = _three_convs()
    opens = partition(model, {"conv2", "conv3"}, opens=True)
    assert opens.stage_of == [0, 0, 1, 1, 1, 2] and opens.count == 3
    closes = partition(model, {"conv1", "conv2"}, opens=False)
    assert closes.stage_of == [0, 1, 1, 2, 2, 2] and closes.count == 3
    assert closes.last_read["a1"] == 2 and closes.last_read["x"] == 0


def test_a_grouped_consumer_is_not_refitted_and_says_why():
    model = _three_convs(group=2)
    analyzed, _ = _analyzed(model)
    state = RepairState(analyzed.prepared.model, analyzed.analysis, _removing(analyzed, "h1", 1, [3]))
    sites, skipped = reconstruction_sites(state, state.affected_nodes())
    assert [c.node for s in sites for c in s.consumers] == ["conv3"]
    assert "does not map one to one" in skipped["conv2"]


def test_heads_and_head_dims_share_one_refitted_output_projection():
    """BERT (4 heads of 8 dims, --attention both): the output projection reads one axis that two groups
    cut (heads, value dims). Removing head 1 and value dim 2 keeps the positions p with p // 8 != 1
    and p % 8 != 2 (21 of 32); the projection is one re-fitted site on the whole axis, not skipped as
    a node reading two activations."""
    from graphprune.compensation.repair import repair
    from tests.helpers.heads import analyzed_of, build

    model, sample = build(("bert", "torchscript", ()))
    _, analyzed = analyzed_of(model, sample, attention="both")
    analysis = analyzed.analysis
    heads = next(g for g in analysis.prunable_groups if g.kind == "heads" and "layer.0/" in g.layer)
    dims = next(g for g in analysis.prunable_groups if g.kind == "dims" and "layer.0/attention/self/value" in g.layer)
    projection = "/encoder/layer.0/attention/output/dense/MatMul_0"
    state = RepairState(analyzed.prepared.model, analysis, {heads.id: np.array([1]), dims.id: np.array([2])})
    sites, skipped = reconstruction_sites(state, state.affected_nodes())
    site = next(s for s in sites if projection in {c.node for c in s.consumers})
    assert projection not in skipped and not site.space.part
    size, kept = state.axis_kept(site.space)
    positions = np.arange(32)
    assert size == 32 and kept.tolist() == positions[(positions // 8 != 1) & (positions % 8 != 2)].tolist()
    report = repair(state, ("mean", "sequential"), reference=to_proto(state.model), feeds=[sample])
    assert projection in report.sequential.refitted
