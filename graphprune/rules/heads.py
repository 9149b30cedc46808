"""What attention ops have in common: their head structure as spaces, and the attributes that
must follow it (head counts, the score scale, the rotary dimension).

An attention op reads queries of ``q_heads`` heads and keys/values of ``kv_heads`` heads; query
head ``j`` reads key/value head ``j // (q_heads / kv_heads)``. Its inputs hold the heads either
on an axis of their own (``[B, heads, S, D]``) or folded into the hidden axis
(``[B, S, heads * D]``); either way the heads are described as factors of that axis (parts,
see :class:`~graphprune.rules.base.Space`):

* the key/value head of each position (``HEADS``): linked across Q, K, V and the output;
* the query head inside its key/value group (``QUERY_GROUP``, grouped-query attention only):
  linked between Q and the output;
* the head dim: Q's and K's are contracted together, V's is the output's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import CONSUMER, HEADS, QUERY_GROUP, FixUp, RuleContext, RuleResult, Space


def factor_spaces(tensor: str, axis: int, sizes: tuple[int, ...]) -> list[Space | None]:
    """The spaces of the factors ``sizes`` (outer first) of one axis: the whole axis when a single
    factor is larger than 1, parts otherwise; None for factors of size 1."""
    real = [n for n in sizes if n > 1]
    out, stride = [], 1
    for n in reversed(sizes):
        if n <= 1:
            out.append(None)
        elif len(real) == 1:
            out.append(Space(tensor, axis))
        else:
            out.append(Space(tensor, axis, (stride, n)))
        stride *= n
    return list(reversed(out))


@dataclass(frozen=True)
class HeadAxes:
    """The head structure of one attention operand: its key/value-head, query-in-group and
    head-dim spaces (None where a factor has size 1)."""

    kv: Space | None
    group: Space | None
    dim: Space | None


def head_axes(tensor: str, heads_axis: int | None, dim_axis: int, kv_heads: int, group: int,
              head_dim: int) -> HeadAxes:
    """Head structure of ``tensor``: heads on ``heads_axis`` (4-D layout) or folded with the head
    dim into ``dim_axis`` (3-D layout, ``heads_axis`` None)."""
    if heads_axis is None:
        kv, grp, dim = factor_spaces(tensor, dim_axis, (kv_heads, group, head_dim))
        return HeadAxes(kv, grp, dim)
    kv, grp = factor_spaces(tensor, heads_axis, (kv_heads, group))
    return HeadAxes(kv, grp, Space(tensor, dim_axis) if head_dim > 1 else None)


def link_heads(res: RuleResult, q: HeadAxes, k: HeadAxes, v: HeadAxes, y: HeadAxes) -> None:
    """Q, K, V and the output share key/value heads; Q and the output share query heads; Q and K
    are contracted over their head dim; V's head dim is the output's."""
    for other in (k, v, y):
        if q.kv is not None and other.kv is not None:
            res.link(q.kv, other.kv)
    if q.group is not None and y.group is not None:
        res.link(q.group, y.group)
    if q.dim is not None and k.dim is not None:
        res.link(q.dim, k.dim, role=CONSUMER)
    if v.dim is not None and y.dim is not None:
        res.link(v.dim, y.dim)
    for axes in (q, y):
        if axes.kv is not None:
            res.heads[axes.kv] = HEADS
        if axes.group is not None:
            # without grouping (one key/value head) the query heads are the heads
            res.heads[axes.group] = QUERY_GROUP if axes.kv is not None else HEADS


def count_fixup(node: str, attr: str, spaces: tuple, what: str = "") -> FixUp:
    """Attribute ``attr`` becomes the product of the kept sizes of ``spaces`` (a head count)."""
    spaces = tuple(s for s in spaces if s is not None)

    def apply(editor, kept):
        editor.set_attr(node, attr, int(np.prod([len(kept(s)) for s in spaces], dtype=np.int64)))
    return FixUp(node, spaces, apply, what or f"{attr} of {node}")


def scale_fixup(ctx: RuleContext, dim: Space | None, head_dim: int) -> FixUp | None:
    """An attention whose score scale defaults to ``1/sqrt(head_dim)`` gets it written out, so
    pruning head dims does not change it."""
    if dim is None or ctx.attr("scale") is not None:
        return None
    node, scale = ctx.name, 1.0 / math.sqrt(head_dim)

    def apply(editor, kept):
        editor.set_attr(node, "scale", float(scale))
    return FixUp(node, (dim,), apply, f"scale of {node}")


def rotation_pairs(rotary: int, interleaved: bool) -> np.ndarray:
    """Head-dim positions rotated together: ``(i, i + rotary/2)``, or ``(2i, 2i+1)`` interleaved."""
    half = np.arange(rotary // 2, dtype=np.int64)
    if interleaved:
        return np.stack([2 * half, 2 * half + 1], axis=1)
    return np.stack([half, half + rotary // 2], axis=1)


def link_rotary(res: RuleResult, ctx: RuleContext, dim: Space, caches: tuple[str, ...], rotary: int,
                interleaved: bool) -> None:
    """Rotary embedding on ``dim``: rotated pairs go together, with their column of each cos/sin
    cache (``[positions, rotary/2]`` or ``[batch, sequence, rotary/2]``)."""
    pairs = rotation_pairs(rotary, interleaved)
    res.link(dim, dim, pairs)
    columns = np.concatenate([np.stack([np.arange(len(pairs)), pairs[:, 0]], 1),
                              np.stack([np.arange(len(pairs)), pairs[:, 1]], 1)])
    for cache in caches:
        rank = ctx.rank(cache)
        if cache and rank:
            res.link(Space(cache, rank - 1), dim, columns)
            for ax in range(rank - 1):
                res.explained.add(Space(cache, ax))


def rotary_dim_fixup(node: str, dim: Space, rotary: int) -> FixUp:
    """A partial rotation's ``rotary_embedding_dim`` becomes the kept count of rotated dims."""
    def apply(editor, kept):
        editor.set_attr(node, "rotary_embedding_dim", int(np.count_nonzero(kept(dim) < rotary)))
    return FixUp(node, (dim,), apply, f"rotary_embedding_dim of {node}")


def explain_all(res: RuleResult, ctx: RuleContext, tensors, skip: tuple = ()) -> None:
    """Every axis of ``tensors`` (batch, sequence, masks...) is explained: not channels here."""
    for t in tensors:
        for ax in range(ctx.rank(t) or 0 if t else 0):
            if Space(t, ax) not in skip:
                res.explained.add(Space(t, ax))
