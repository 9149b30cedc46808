"""How the factors of split axes become groups, checked against the structure of each export.

* Q/K dims and V dims are independent when the projections are separate tensors (BERT), or
  pieces of one fused projection cut by Split/Slice (GPT-2, dynamo ViT): one head-dim group
  then holds both families as separate slots (2 x head_dim slots).
* torch's MultiheadAttention reshapes its fused projection to [T, B, 3, E] before chunking, so
  Q, K and V must keep the same dims: one head-dim group of head_dim slots.
* Rotary embeddings pair dim i with i + head_dim/2, and the cos/sin tables are shared by every
  layer: one Q/K head-dim group of head_dim/2 slots for the whole model.
* Models without attention keep their groups: no Reshape there is split into factors.
"""
from __future__ import annotations

import pytest

from models.transformers import build_transformer
from models.zoo import build as build_zoo
from graphprune.api import inspect
from graphprune.pipeline.load import load

HEAD_DIM = 8


def dims_slots(name: str, style: str) -> list[int]:
    groups = inspect(load(build_transformer(name, style=style))).groups
    return sorted(g.n_slots for g in groups if g.kind == "dims")


@pytest.mark.parametrize("name,style,expected", [
    ("bert", "torchscript", [HEAD_DIM] * 4),              # per layer: Q/K dims, V dims
    ("gpt2", "dynamo", [2 * HEAD_DIM] * 2),               # per layer: one group, Q/K and V slots apart
    ("vit", "dynamo", [2 * HEAD_DIM] * 2),
    ("vit", "torchscript", [HEAD_DIM] * 2),               # per layer: Q, K, V dims tied
    ("llama", "dynamo", [HEAD_DIM // 2] + [HEAD_DIM] * 2),  # rotary pairs of all layers; V dims per layer
])
def test_head_dim_groups_follow_the_export(name, style, expected):
    assert dims_slots(name, style) == expected


@pytest.mark.parametrize("name", ["shufflenetv2", "vgg_reshape", "resnet18"])
def test_models_without_attention_have_no_factor_groups(name):
    groups = inspect(load(build_zoo(name))).groups
    assert groups and all(g.kind == "" for g in groups)
    assert all(not s.is_part for g in groups for s in g.spaces)
