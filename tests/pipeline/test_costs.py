"""The parameters and MACs a prune reports are what ``graphprune profile`` counts for the files,
and, on a hand-made chain, what counting by hand gives."""
from __future__ import annotations

import numpy as np

from graphprune.api import prune
from graphprune.pipeline.costs import model_cost
from graphprune.profiling import profile
from models.zoo import build
from tests.helpers.planning import conv_chain


def _summary_line(result, label: str) -> str:
    return next(line for line in result.summary_lines() if line.startswith(label))


def test_prune_reports_the_profilers_counts():
    model = build("resnet18")
    result = prune(model, ratio=0.5, validate=False)
    before, after = profile(model, progress=False), profile(result.model, progress=False)
    assert (result.params_before, result.params_after) == (before.total_params, after.total_params)
    assert (result.macs_before, result.macs_after) == (before.total_macs, after.total_macs)
    assert result.params_after < result.params_before and result.macs_after < result.macs_before
    kept = 100.0 * after.total_params / before.total_params
    assert _summary_line(result, "parameters:") == \
        f"parameters: {before.total_params:,} -> {after.total_params:,} ({kept:.1f}% kept)"
    assert model_cost(result.graph).params == model_cost(result.model).params == after.total_params


def test_counts_of_a_hand_made_chain():
    """x[1,2,5,5] -> Conv(w1 4x2x1x1, b1) -> Relu -> Conv(w2 3x4x1x1, b2): the 4 middle channels
    lose 2 at ratio 0.5. Parameters are weight elements; a 1x1 Conv's MACs are
    out_elements * in_channels, plus out_elements for its bias; a Relu's are its out_elements
    (the profiler's documented formulas, graphprune/profiling/macs.py)."""
    rng = np.random.default_rng(0)
    model = conv_chain(rng.standard_normal((4, 2, 1, 1)), rng.standard_normal((3, 4, 1, 1)),
                       b1=rng.standard_normal(4).astype(np.float32), b2=rng.standard_normal(3).astype(np.float32),
                       hw=5)
    result = prune(model, ratio=0.5, validate=False)
    pixels = 5 * 5

    def params(middle):
        return middle * 2 + middle + 3 * middle + 3

    def macs(middle):
        conv1, relu, conv2 = middle * pixels * 2 + middle * pixels, middle * pixels, 3 * pixels * middle + 3 * pixels
        return conv1 + relu + conv2

    assert (result.params_before, result.params_after) == (params(4), params(2)) == (27, 15)
    assert (result.macs_before, result.macs_after) == (macs(4), macs(2)) == (775, 425)
    assert _summary_line(result, "MACs:") == "MACs:       775 -> 425 (54.8% kept)"


def test_cost_model_reads_the_skeleton_of_a_fresh_analysis(monkeypatch):
    """The analysed graph is serialized once (for shape inference); the cost model reads that copy.
    A graph other than the analysed one gets a skeleton of its own."""
    import graphprune.graph.model as model_module
    from graphprune.pipeline.costs import cost_model
    from tests.helpers.planning import analysed

    rng = np.random.default_rng(0)
    model = conv_chain(rng.standard_normal((4, 2, 1, 1)), rng.standard_normal((3, 4, 1, 1)),
                       b1=rng.standard_normal(4).astype(np.float32), b2=rng.standard_normal(3).astype(np.float32),
                       hw=5)
    graph, analysis = analysed(model)
    other, _ = analysed(model)

    def no_serialization(*args, **kwargs):
        raise AssertionError("serialized the graph again")

    monkeypatch.setattr(model_module, "to_proto", no_serialization)
    costs = cost_model(graph, analysis, None)
    assert costs is not None and (costs.base.params, costs.base.macs) == (27, 775)  # the hand count above
    assert cost_model(other, analysis, None) is None  # needed a skeleton of its own: the patched to_proto


def _prepared_costs(model, keep_bn: bool):
    from graphprune.pipeline import Options
    from graphprune.pipeline.analyze import analyze
    from graphprune.pipeline.costs import decision_costs
    from graphprune.pipeline.load import load
    from graphprune.pipeline.prepare import prepare

    options = Options(ratio=0.5, validate=False, keep_bn=keep_bn)
    source = load(model)
    prepared = prepare(source, options)
    return source, prepared, decision_costs(prepared, analyze(prepared, options).analysis, None)


def test_a_graph_prepare_left_as_given_is_counted_once(monkeypatch):
    """Normalizing the hand-made chain changes nothing, so the model as given is the analysed
    graph: its count comes from the cost model's pass (counting the source again would fail here)."""
    import graphprune.pipeline.costs as costs_module

    rng = np.random.default_rng(0)
    model = conv_chain(rng.standard_normal((4, 2, 1, 1)), rng.standard_normal((3, 4, 1, 1)),
                       b1=rng.standard_normal(4).astype(np.float32), b2=rng.standard_normal(3).astype(np.float32),
                       hw=5)

    def no_second_count(*args, **kwargs):
        raise AssertionError("counted the source again")

    monkeypatch.setattr(costs_module, "model_cost", no_second_count)
    _, prepared, (costs, reference) = _prepared_costs(model, keep_bn=True)
    assert prepared.unchanged
    assert (reference.params, reference.macs) == (costs.base.params, costs.base.macs) == (27, 775)  # hand count


def test_a_folded_graph_counts_the_source_on_its_own():
    """Folding ResNet-18's BatchNorms changes the graph: the reference is the source's own count
    (BatchNorm scale, bias, mean and variance included), the cost model the folded graph's, where
    each BatchNorm's four vectors became one bias of the bias-free Conv before it."""
    model = build("resnet18")
    source, prepared, (costs, reference) = _prepared_costs(model, keep_bn=False)
    assert not prepared.unchanged and prepared.fold.modified
    before = profile(model, progress=False)
    assert (reference.params, reference.macs) == (before.total_params, before.total_macs)
    batchnorm = sum(int(np.prod(t.dims)) for t in model.graph.initializer
                    if any(n.op_type == "BatchNormalization" and t.name in list(n.input)[1:] for n in model.graph.node))
    convs = {n.output[0]: n for n in model.graph.node if n.op_type == "Conv"}
    assert all(len(convs[n.input[0]].input) == 2 for n in model.graph.node if n.op_type == "BatchNormalization")
    assert batchnorm > 0 and costs.base.params == before.total_params - batchnorm + batchnorm // 4
