"""The transformer exports the head tests run on, and the pipeline steps they share.

Head counts come from the models' configurations (``models.transformers``), not from the
analysis: ``CONFIG[name]`` is (query heads, key/value heads).
"""
from __future__ import annotations

import numpy as np
import onnx

from graphprune.graph.model import to_proto
from graphprune.oracle import kill_slots
from graphprune.pipeline import Options, analyze, apply, decide, load, prepare, score
from models.transformers import STYLES, TRANSFORMERS, build_transformer
from models.transformers.bert import BERT
from models.transformers.gpt2 import GPT2
from models.transformers.llama import LLAMA
from models.transformers.vit import VIT
from models.transformers.whisper import WHISPER
from tests.helpers.onnxrt import relative_error, run
from tests.helpers.transformer_cases import model_feeds

#: (query heads, key/value heads) of every small model, from its configuration
CONFIG = {
    **{name: (BERT["small"].heads,) * 2 for name in ("bert", "bert_attention23", "bert_fused_ort", "bert_mha_ort")},
    "gpt2": (GPT2["small"].heads,) * 2,
    **{name: (LLAMA["small"].heads, LLAMA["small"].kv_heads) for name in ("llama", "llama_attention23",
                                                                          "llama_gqa_ort")},
    "llama_mqa": (LLAMA["small"].heads, 1),
    **{name: (VIT["small"].heads,) * 2 for name in ("vit", "vit_bn", "vit_nonorm")},
    "whisper_encoder": (WHISPER["small"].heads,) * 2,
}
#: every registered export, and the other forms of repeat_kv (Tile, Gather, sizes read from Shape)
CASES = ([(name, style, ()) for name in sorted(TRANSFORMERS) for style in STYLES[name]]
         + [(name, style, (("repeat_kv", form),)) for name in ("llama", "llama_mqa")
            for style, form in (("torchscript", "expand_shape"), ("dynamo", "tile"), ("dynamo", "gather"))])
#: pruned outputs against the killed original: removed terms were exact zeros
RTOL = 1e-5
#: ops that hold the head count of their inputs as an attribute
HEAD_ATTRIBUTES = {"Attention": ("q_num_heads", "num_heads"), "MultiHeadAttention": ("num_heads",),
                   "GroupQueryAttention": ("num_heads",)}


def case_id(case) -> str:
    name, style, kw = case
    return "-".join([name, style] + [v for _, v in kw])


def build(case) -> tuple[onnx.ModelProto, dict]:
    name, style, kw = case
    model = build_transformer(name, style=style, **dict(kw))
    return model, model_feeds(name, model)


def options(feeds: dict, **kw) -> Options:
    shapes = {k: list(v.shape) for k, v in feeds.items()}
    return Options(validate=False, count_macs=False, input_shapes=shapes, **kw)


def analyzed_of(model, feeds: dict, **kw):
    opts = options(feeds, **kw)
    return opts, analyze(prepare(load(model), opts), opts)


def prune_model(model, feeds: dict, ratio: float, **kw):
    """(decision's removed slots, pruned ModelProto, analysis) of a ratio prune with ``kw`` options."""
    opts, analyzed = analyzed_of(model, feeds, ratio=ratio, **kw)
    decided = decide(score(analyzed, opts), opts)
    removed = {k: np.sort(v) for k, v in decided.decision.removed.items() if len(v)}
    pruned = apply(analyzed, decided.decision.removed, opts)
    return removed, to_proto(pruned.model), analyzed.analysis


def quarter(group, rng) -> np.ndarray:
    """A quarter of a group's slots (rounded down): the last ones, or seeded random ones."""
    count = group.n_slots // 4
    if rng is None:
        return np.arange(group.n_slots - count, group.n_slots)
    return np.sort(rng.choice(group.n_slots, count, replace=False))


def killed_model(model, feeds: dict, rng=None):
    """The model with a quarter of every prunable group's slots (heads, head dims, MLP neurons)
    dead, the dead slots by group, and the analysis they refer to."""
    _, analyzed = analyzed_of(model, feeds)
    analysis = analyzed.analysis
    dead = {g.id: quarter(g, rng) for g in analysis.prunable_groups if g.n_slots >= 4}
    kill_slots(analyzed.prepared.model, analysis, dead)
    return to_proto(analyzed.prepared.model), dead, analysis


def max_error(reference: dict, candidate: dict) -> float:
    assert reference.keys() == candidate.keys()
    for name in reference:
        assert reference[name].shape == candidate[name].shape, name
    return max(relative_error(reference[k], candidate[k]) for k in reference)


def score_heads(model: onnx.ModelProto, feeds: dict) -> list[int]:
    """Head counts as onnxruntime computes them: axis 1 of every Softmax input (the scores) and of
    every 4-D query of an ONNX Attention node."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probed = [n.input[0] for n in probe.graph.node
              if n.op_type == "Softmax" or (n.op_type == "Attention" and n.domain == "")]
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=s) for s in probed if s not in known)
    out = run(probe, feeds)
    return [int(out[s].shape[1]) for s in probed if out[s].ndim == 4]


def head_attributes(model: onnx.ModelProto) -> list[int]:
    """Query head counts written on attention nodes (3-D inputs, or onnxruntime's fused ops)."""
    counts = []
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.name in HEAD_ATTRIBUTES.get(node.op_type, ()):
                counts.append(int(attr.i))
    return counts


def kept_sizes(model: onnx.ModelProto) -> dict[str, tuple]:
    """Shapes of the float initializers (the parameters; rewritten shape constants get new names)."""
    return {t.name: tuple(t.dims) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT}
