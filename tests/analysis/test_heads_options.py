"""``--attention``, grouped/multi-query attention, inspect's attention section, plans and costs.

Head counts and head dims are the models' configurations (``tests.helpers.heads.CONFIG``,
``head_dim = hidden / heads``); every pruned model is run in onnxruntime.
"""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import onnx
import pytest

from graphprune.api import apply as apply_plan, inspect, plan
from graphprune.cli import main
from graphprune.pipeline.load import load
from graphprune.profiling.counts import count_parameters
from models.transformers import build_transformer
from models.transformers.llama import LLAMA
from tests.helpers.heads import CONFIG, analyzed_of, build, prune_model, score_heads
from tests.helpers.onnxrt import run

BERT = ("bert", "dynamo", ())
LLAMA_CASE = ("llama", "dynamo", ())
HEAD_DIM = 8  # hidden / heads of the small bert (32 / 4) and llama (64 / 8)


def kinds(analysis, prunable: bool) -> set[str]:
    return {g.kind for g in analysis.groups if g.kind and g.prunable == prunable}


@pytest.mark.parametrize("mode,pruned_kinds,kept_reason", [
    ("both", {"heads", "dims"}, None),
    ("heads", {"heads"}, "head dims are kept (--attention heads)"),
    ("dims", {"dims"}, "whole heads are kept (--attention dims)")])
def test_attention_mode_chooses_which_family_is_prunable(mode, pruned_kinds, kept_reason):
    model, feeds = build(BERT)
    _, analyzed = analyzed_of(model, feeds, attention=mode)
    analysis = analyzed.analysis
    assert kinds(analysis, True) == pruned_kinds
    kept = [g for g in analysis.groups if g.kind and not g.prunable]
    assert all(kept_reason in {b.reason for b in g.barriers} for g in kept) and bool(kept) == bool(kept_reason)


@pytest.mark.parametrize("mode,heads_left", [("heads", 2), ("dims", 4), ("both", 2)])
def test_attention_mode_decides_what_a_prune_removes(mode, heads_left):
    """Half of the 4 heads go unless heads are kept; half of the 8 head dims unless dims are kept."""
    model, feeds = build(BERT)
    _, pruned, _ = prune_model(model, feeds, 0.5, attention=mode)
    assert set(score_heads(pruned, feeds)) == {heads_left}
    query = next(t for t in pruned.graph.initializer if t.name == "encoder.layer.0.attention.self.query.weight")
    dims_left = HEAD_DIM if mode == "heads" else HEAD_DIM // 2
    assert tuple(query.dims) == (32, heads_left * dims_left)


def test_grouped_query_attention_keeps_its_ratio_and_multi_query_prunes_query_heads():
    query_heads, kv_heads = CONFIG["llama"]
    gqa, _ = build(LLAMA_CASE)
    _, analyzed = analyzed_of(gqa, {})
    heads = [g for g in analyzed.analysis.groups if g.kind == "heads"]
    query = [g for g in analyzed.analysis.groups if g.kind == "query"]
    assert heads and all(g.prunable and g.n_slots == kv_heads for g in heads)
    assert query and all(g.n_slots == query_heads // kv_heads and not g.prunable for g in query)
    assert all("query/key-value head ratio" in b.reason for g in query for b in g.barriers)
    mqa = build_transformer("llama_mqa", style="dynamo")
    _, analyzed = analyzed_of(mqa, {})
    heads = [g for g in analyzed.analysis.groups if g.kind == "heads"]
    assert heads and all(g.prunable and g.n_slots == LLAMA["small"].heads for g in heads)
    assert not [g for g in analyzed.analysis.groups if g.kind == "query"]


def test_pruning_grouped_query_attention_removes_key_value_heads_with_their_queries():
    model, feeds = build(LLAMA_CASE)
    _, pruned, _ = prune_model(model, feeds, 0.5, attention="heads")
    query_heads, kv_heads = CONFIG["llama"]
    assert set(score_heads(pruned, feeds)) == {query_heads // 2}
    widths = {t.name: t.dims[1] for t in pruned.graph.initializer if t.name.endswith("_proj.weight")
              and "self_attn" in t.name and "o_proj" not in t.name}
    assert widths == {f"model.layers.{i}.self_attn.{p}.weight": (query_heads if p == "q_proj" else kv_heads)
                      // 2 * HEAD_DIM for i in range(2) for p in ("q_proj", "k_proj", "v_proj")}


def inspect_cli(path) -> tuple[list[str], dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["inspect", str(path)])
    text = out.getvalue().splitlines()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["inspect", str(path), "--json"])
    return text, json.loads(out.getvalue())


@pytest.mark.parametrize("name,line", [
    ("bert", "4 heads (4 slots), head dim 8"),
    ("llama", "8 query heads over 4 key/value heads (4 slots: a key/value head with its query heads), head dim 8")])
def test_inspect_names_every_attention_block(tmp_path, name, line):
    path = tmp_path / "model.onnx"
    onnx.save(build_transformer(name, style="dynamo"), path)
    text, data = inspect_cli(path)
    start = next(i for i, t in enumerate(text) if t.startswith("attention heads (2 blocks)"))
    blocks = text[start + 1:start + 3]
    scope = {"bert": "/encoder/layer.{}/attention", "llama": "/model/layers.{}/self_attn"}[name]
    for i, (entry, block) in enumerate(zip(data["attention"], blocks)):
        assert block.startswith(f"  {scope.format(i)}: group {entry['heads_group']}, {line}")
        assert block.endswith("prunable") and entry["layer"] == scope.format(i)
        heads_group = data["group_list"][entry["heads_group"]]
        assert heads_group["kind"] == "heads" and heads_group["prunable"]
        assert all(data["group_list"][g]["kind"] == "dims" for g in entry["dims_groups"])


def test_inspect_says_why_fused_head_dims_are_kept():
    """(The API: onnx.checker rejects the file, whose SimplifiedLayerNormalization only onnxruntime knows.)"""
    data = inspect(load(build_transformer("llama_gqa_ort"))).to_dict()
    dims = [g for g in data["group_list"] if g["kind"] == "dims"]
    assert dims and all(any("multiple of 8" in r for r in g["barriers"]) for g in dims)
    assert len(data["attention"]) == 2 and all(not b["blocked"] for b in data["attention"])


def test_plan_file_round_trip_and_predicted_parameters(tmp_path):
    """Plan and apply give the bytes prune gives; the plan's predicted count is the pruned count
    (axes shared by the head and head-dim groups lose the positions either removes)."""
    model, feeds = build(LLAMA_CASE)
    shapes = {k: list(v.shape) for k, v in feeds.items()}
    result = plan(load(model), ratio=0.5, input_shapes=shapes)
    result.plan.save(tmp_path / "plan.json")
    applied = apply_plan(load(model), tmp_path / "plan.json", input_shapes=shapes, validate=False)
    _, pruned, _ = prune_model(model, feeds, 0.5)
    assert applied.model.SerializeToString() == pruned.SerializeToString()
    assert result.plan.predicted["params"]["after"] == count_parameters(pruned)
    assert run(pruned, feeds)["logits"].shape == run(model, feeds)["logits"].shape


def test_prune_cli_takes_attention(tmp_path):
    model, feeds = build(BERT)
    onnx.save(model, tmp_path / "bert.onnx")
    shapes = [a for k, v in feeds.items() for a in ("--input-shape", f"{k}:{'x'.join(map(str, v.shape))}")]
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["prune", str(tmp_path / "bert.onnx"), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.5",
                     "--attention", "dims", "--no-validate", *shapes])
    assert code == 0
    slim = onnx.load(tmp_path / "slim.onnx")
    assert set(score_heads(slim, feeds)) == {4}
    key = next(t for t in slim.graph.initializer if t.name == "encoder.layer.0.attention.self.key.weight")
    assert tuple(key.dims) == (32, 4 * HEAD_DIM // 2)


def test_unknown_attention_mode_is_a_usage_error():
    from graphprune.errors import UsageError

    with pytest.raises(UsageError, match="--attention must be one of both, heads, dims"):
        inspect(load(build_transformer("bert", style="dynamo")), attention="all")


def test_one_axis_split_two_ways_is_kept_whole():
    """An axis reshaped into 4 x 8 for one attention and 2 x 16 for another cannot lose heads of
    both kinds: the analysis keeps it whole (no head groups) and pruning stays exact."""
    from models.transformers.blocks import Scores, attention, linear, merge_heads, split_heads
    from models.transformers.common import TransformerBuilder

    b = TransformerBuilder("twice", style="dynamo")
    x = b.float_input("x", ["sequence", 32])
    with b.scope("proj"):
        q = linear(b, x, 32, 32)
    outs = []
    for heads in (4, 2):
        h = split_heads(b, q, heads, 32 // heads)
        outs.append(merge_heads(b, attention(b, h, h, h, 32 // heads, Scores()), 32))
    with b.scope("out"):
        y = linear(b, b.add(*outs), 32, 32)
    b.graph_output(y, "y", [b.batch, b.sequence, 32])
    model = b.finish()
    feeds = {"x": np.random.default_rng(0).standard_normal((2, 5, 32)).astype(np.float32)}
    _, analyzed = analyzed_of(model, feeds)
    assert not {g.kind for g in analyzed.analysis.groups} - {""}
    _, pruned, _ = prune_model(model, feeds, 0.5)
    assert run(pruned, feeds)["y"].shape == (2, 5, 32)


@pytest.mark.parametrize("style", ["torchscript", "dynamo"])
@pytest.mark.parametrize("name,norm_reason", [("vit", "over axis 2"), ("vit_bn", None),
                                              ("vit_nonorm", None)])
def test_residual_axis_prunes_unless_layer_norm_statistics_read_it(name, style, norm_reason):
    """The hidden axis (conv_proj's output channels, the class token, the position table, every
    block's residual): LayerNorm statistics mix it; BatchNorm (folded) and no norm do not, and
    the class token broadcast to the batch at run time must not block it."""
    from graphprune.rules.base import Space

    analysis = inspect(load(build_transformer(name, style=style))).analysis
    hidden = analysis.groups[analysis.space_group[Space("conv_proj.weight", 0)]]
    assert Space("class_token", 2) in hidden.spaces and Space("encoder.pos_embedding", 2) in hidden.spaces
    if norm_reason is None:
        assert hidden.prunable and hidden.n_slots == 32
    else:
        assert not hidden.prunable and any(norm_reason in b.reason for b in hidden.barriers)
