"""Ops that move or resample positions: Transpose, Squeeze/Unsqueeze, DepthToSpace/SpaceToDepth,
Resize/Upsample, Pad, Expand, Tile, ConstantOfShape (and the size-entry helpers shape inputs use).

Concat, Split, Slice and Gather live in :mod:`graphprune.rules.selection`, Reshape and Flatten in
:mod:`graphprune.rules.reshape`.
"""
from __future__ import annotations

import numpy as np

from .shapevalue import Entry
from .base import (CHANNEL, QUERY_GROUP, Factoring, FixUp, RuleContext, RuleResult, Space, normalize_axis, pass_axes,
                   register)


def is_static(d) -> bool:
    return isinstance(d, int)


# --------------------------------------------------------------------------- size entries
def size_entry(res: RuleResult, ctx: RuleContext, entry: Entry | None, space: Space, what: str) -> bool:
    """Make a shape entry that states the size of ``space`` follow pruning.

    Returns False (and records a barrier reason) when the entry cannot be made to follow.
    """
    if entry is None:
        res.barrier(space, f"{what}: the size of {space} is computed at run time")
        return False
    if entry.is_dim:
        _, tensor, axis = entry.source
        res.link(Space(tensor, axis), space)
        res.size_uses.add(Space(tensor, axis))
        return True
    if entry.is_const:
        source = entry.source

        def apply(editor, kept, space=space, source=source):
            editor.patch_constant(source, len(kept(space)))
        res.fixups.append(FixUp(ctx.name, (space,), apply, f"{what}: size of {space}"))
        res.explained.add(space)
        return True
    res.barrier(space, f"{what}: the size of {space} is computed at run time")
    return False


def _axes_list(ctx: RuleContext, attr: str, input_index: int, rank: int) -> list[int] | None:
    value = ctx.attr(attr)
    if value is None and ctx.input(input_index):
        entries = ctx.input_entries(input_index)
        if entries is None or any(e.value is None for e in entries):
            return None
        value = [e.value for e in entries]
    if value is None:
        return []
    return [normalize_axis(int(a), rank) for a in value]


# --------------------------------------------------------------------------- Transpose
@register("Transpose", views=True)
def transpose_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult(view=True)
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        return res
    perm = ctx.attr("perm") or list(reversed(range(rank)))
    for out_ax, in_ax in enumerate(perm):
        res.link(Space(x, int(in_ax)), Space(y, out_ax))
    return res


# --------------------------------------------------------------------------- Squeeze / Unsqueeze
@register("Squeeze", views=True)
def squeeze_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult(view=True)
    x, y = ctx.input(0), ctx.output(0)
    shape = ctx.shape(x)
    if shape is None:
        return res
    rank = len(shape)
    axes = _axes_list(ctx, "axes", 1, rank)
    if axes is None:
        return res
    if not axes:
        axes = [a for a, d in enumerate(shape) if d == 1]
    pass_axes(res, x, y, rank, dropped=set(axes))
    return res


@register("Unsqueeze", views=True)
def unsqueeze_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult(view=True)
    x, y = ctx.input(0), ctx.output(0)
    rank_in, rank_out = ctx.rank(x), ctx.rank(y)
    if rank_in is None:
        return res
    axes = ctx.attr("axes")
    if axes is None:
        entries = ctx.input_entries(1)
        if entries is None or any(e.value is None for e in entries):
            return res
        axes = [e.value for e in entries]
    rank_out = rank_in + len(axes)
    pass_axes(res, x, y, rank_in, inserted={normalize_axis(int(a), rank_out) for a in axes})
    return res


# --------------------------------------------------------------------------- DepthToSpace / SpaceToDepth
def _depth_pairs(c_small: int, block2: int, crd: bool) -> np.ndarray:
    """Small channel c ↔ big channels (k*c_small + c) for DCR, (c*block2 + k) for CRD."""
    c = np.repeat(np.arange(c_small, dtype=np.int64), block2)
    k = np.tile(np.arange(block2, dtype=np.int64), c_small)
    big = c * block2 + k if crd else k * c_small + c
    return np.stack([c, big], axis=1)


@register("DepthToSpace", "SpaceToDepth")
def depth_space_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    xs, ys = ctx.shape(x), ctx.shape(y)
    if xs is None or ys is None:
        return res
    b = int(ctx.attr("blocksize"))
    res.link(Space(x, 0), Space(y, 0))
    for t in (x, y):
        for ax in range(2, len(xs)):
            res.barrier(Space(t, ax), f"{ctx.node.op_type} {ctx.name} rearranges spatial axis {ax}")
    d2s = ctx.node.op_type == "DepthToSpace"
    small, big = (y, x) if d2s else (x, y)
    c_small = ctx.shape(small)[1]
    if not is_static(c_small):
        res.barrier(Space(x, 1), f"{ctx.node.op_type} {ctx.name}: channel count is not static")
        return res
    crd = d2s and ctx.attr("mode", b"DCR") in (b"CRD", "CRD")
    res.link(Space(small, 1), Space(big, 1), _depth_pairs(c_small, b * b, crd))
    return res


# --------------------------------------------------------------------------- Resize / Upsample
def _resize_inputs(ctx: RuleContext):
    """(scales input index, sizes input index) for this op and opset."""
    if ctx.node.op_type == "Upsample":
        return (1 if ctx.input(1) else None), None
    if ctx.opset < 11:
        return 1, None
    return 2, 3


@register("Resize", "Upsample")
def resize_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    xs, ys = ctx.shape(x), ctx.shape(y)
    if xs is None:
        return res
    rank = len(xs)
    _, sizes_i = _resize_inputs(ctx)
    sizes = ctx.input_entries(sizes_i) if sizes_i is not None and ctx.input(sizes_i) else None
    mode = ctx.attr("coordinate_transformation_mode", b"half_pixel")
    # opset 18+: ``axes`` names the axes that sizes/scales entries refer to (others keep their size)
    listed = [normalize_axis(int(a), rank) for a in (ctx.attr("axes") or range(rank))]
    for ax in range(rank):
        same = ys is not None and xs[ax] == ys[ax] and xs[ax] is not None
        if not same:
            res.barrier(Space(x, ax), f"{ctx.node.op_type} {ctx.name} resamples axis {ax}")
            continue
        if mode in (b"tf_crop_and_resize", "tf_crop_and_resize"):
            res.barrier(Space(x, ax), f"Resize {ctx.name}: crop-and-resize regions name positions of axis {ax}")
            continue
        res.link(Space(x, ax), Space(y, ax))
        if sizes_i is not None and ctx.input(sizes_i) and ax in listed:
            k = listed.index(ax)
            entry = sizes[k] if sizes is not None and k < len(sizes) else None
            size_entry(res, ctx, entry, Space(y, ax), f"Resize {ctx.name} sizes")
    return res


# --------------------------------------------------------------------------- Pad
@register("Pad")
def pad_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        return res
    pads = ctx.attr("pads")
    if pads is None:
        entries = ctx.input_entries(1)
        pads = None if entries is None else [e.value for e in entries]
    axes = list(range(rank))
    if ctx.input(3):
        axes = _axes_list(ctx, "", 3, rank)
    if pads is None or axes is None or None in pads:
        for ax in range(rank):
            res.barrier(Space(x, ax), f"Pad {ctx.name}: pads are computed at run time")
        return res
    n = len(axes)
    padded = {axes[i] for i in range(n) if pads[i] != 0 or pads[i + n] != 0}
    for ax in range(rank):
        if ax in padded:
            res.barrier(Space(x, ax), f"Pad {ctx.name} pads axis {ax}")
        else:
            res.link(Space(x, ax), Space(y, ax))
    return res


# --------------------------------------------------------------------------- Expand / Tile / ConstantOfShape
@register("Expand")
def expand_rule(ctx: RuleContext) -> RuleResult:
    """Output axis o: follows the input axis when sizes agree; otherwise its size is a shape entry."""
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    xs, ys = ctx.shape(x), ctx.shape(y)
    if xs is None or ys is None:
        return res
    entries = ctx.input_entries(1)
    n_entries = len(entries) if entries is not None else ctx.shape(ctx.input(1))
    if entries is None:
        n_entries = (n_entries[0] if n_entries and is_static(n_entries[0]) else len(ys))
    for oax in range(len(ys)):
        ax = oax - (len(ys) - len(xs))
        ei = oax - (len(ys) - n_entries)
        entry = entries[ei] if entries is not None and ei >= 0 else None
        has_entry = ei >= 0
        if ax >= 0 and xs[ax] == ys[oax]:
            res.link(Space(x, ax), Space(y, oax))
            if not has_entry or (entry is not None and entry.value == 1):
                continue  # the entry broadcasts: the size follows the input
        elif ax >= 0 and xs[ax] != 1:
            res.barrier(Space(x, ax), f"Expand {ctx.name}: axis {ax} changes size")
            continue
        if size_entry(res, ctx, entry, Space(y, oax), f"Expand {ctx.name} shape") and (ax < 0 or xs[ax] == 1) \
                and is_static(ys[oax]) and ys[oax] > 1:
            res.heads[Space(y, oax)] = QUERY_GROUP  # copies of one position (repeat_kv's repeated heads)
    return res


@register("Tile")
def tile_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    xs = ctx.shape(x)
    reps = ctx.input_entries(1)
    if xs is None:
        return res
    for ax in range(len(xs)):
        rep = reps[ax] if reps is not None and ax < len(reps) else None
        if rep is not None and rep.value == 1:
            res.link(Space(x, ax), Space(y, ax))
        elif rep is not None and xs[ax] == 1:
            if size_entry(res, ctx, rep, Space(y, ax), f"Tile {ctx.name} repeats") and (rep.value or 0) > 1:
                res.heads[Space(y, ax)] = QUERY_GROUP  # copies of one position (repeat_kv's repeated heads)
        else:
            plain = RuleResult()
            plain.barrier(Space(x, ax), f"Tile {ctx.name} repeats axis {ax}")
            factored = _tiled_axis(ctx, x, y, ax, xs[ax], rep)
            if factored is None:
                res.merge(plain)
            else:
                res.factorings.append(Factoring(ctx.name, factored, plain))
    return res


def _tiled_axis(ctx: RuleContext, x: str, y: str, ax: int, size, rep) -> RuleResult | None:
    """Axis ``ax`` tiled ``r`` times: position ``t * size + i`` of the output is position ``i`` of
    the input; the copy index ``t`` is a part of its own (the query heads that read one key/value
    head, for ``repeat`` of key/value heads), the rest follows the input."""
    if not is_static(size) or rep is None or not rep.is_const or not (rep.value or 0) > 1:
        return None
    res = RuleResult()
    copies, inner = Space(y, ax, (size, rep.value)), Space(y, ax, (1, size))
    res.link(Space(x, ax), inner)
    res.explained.add(copies)
    res.heads[copies] = QUERY_GROUP
    source = rep.source

    def apply(editor, kept, copies=copies, source=source):
        editor.patch_constant(source, len(kept(copies)))
    res.fixups.append(FixUp(ctx.name, (copies,), apply, f"Tile {ctx.name} repeats of axis {ax}"))
    return res


@register("ConstantOfShape")
def constant_of_shape_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    y = ctx.output(0)
    entries = ctx.input_entries(0)
    rank = ctx.rank(y)
    for ax in range(rank or 0):
        entry = entries[ax] if entries is not None and ax < len(entries) else None
        size_entry(res, ctx, entry, Space(y, ax), f"ConstantOfShape {ctx.name}")
    return res


__all__ = ["is_static", "size_entry", "CHANNEL"]
