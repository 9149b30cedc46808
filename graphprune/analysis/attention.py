"""Attention blocks as ``inspect`` names them: per group of whole heads, its size and head dims.

A group of kind ``heads`` shares with its head-dim groups the axes that hold both (the Q, K, V
projections' outputs, the output projection's input). Such an axis of ``n`` positions whose
head-dim part has ``d`` positions holds ``n // d`` heads: the largest count is the number of
query heads, the smallest (when different) the number of key/value heads.
"""
from __future__ import annotations

from .types import AttentionBlock, Group


def attention_blocks(groups: list[Group]) -> list[AttentionBlock]:
    dims_of: dict = {}
    for g in groups:
        if g.kind == "dims":
            for s in g.spaces:
                if s.is_part:
                    dims_of.setdefault(s.whole, []).append((g.id, s.part[1]))
    blocks = []
    for g in groups:
        if g.kind != "heads":
            continue
        counts, dims_groups, head_dim = [], set(), None
        for s in g.spaces:
            for gid, dim in dims_of.get(s, ()):
                dims_groups.add(gid)
                head_dim = dim if head_dim is None else head_dim
                counts.append(g.sizes[s] // dim)
        query = max(counts, default=g.n_slots)
        kv = min(counts, default=query)
        blocked = "; ".join(sorted({b.reason for b in g.barriers}))
        blocks.append(AttentionBlock(block_name(g), g.id, query, kv if kv != query else None, head_dim, g.n_slots,
                                     tuple(sorted(dims_groups)), blocked))
    return blocks


def block_name(group: Group) -> str:
    """The scope the group's nodes share (``/encoder/layer.0/attention`` for exporters' path-like
    node names), else the group's layer."""
    paths = [n.split("/") for n in group.nodes if "/" in n]
    if len(paths) < len(group.nodes) or not paths:
        return group.layer
    common = []
    for parts in zip(*[p[:-1] for p in paths]):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    name = "/".join(common)
    return name if name.strip("/") else group.layer
