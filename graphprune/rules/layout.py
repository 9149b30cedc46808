"""Ops that move, select, join or split positions: Transpose, Squeeze/Unsqueeze, Concat, Split,
Slice, Gather, DepthToSpace/SpaceToDepth, Resize/Upsample, Pad, Expand, Tile, ConstantOfShape.

Reshape and Flatten live in :mod:`graphprune.rules.reshape`.
"""
from __future__ import annotations

import numpy as np

from .shapevalue import Entry
from .base import (CHANNEL, FixUp, RuleContext, RuleResult, Space, identity_all, normalize_axis,
                   offset_pairs, pass_axes, register)


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
@register("Transpose")
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
@register("Squeeze")
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


@register("Unsqueeze")
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


# --------------------------------------------------------------------------- Concat
@register("Concat")
def concat_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    y = ctx.output(0)
    rank = ctx.rank(y)
    if rank is None:
        return res
    axis = normalize_axis(int(ctx.attr("axis", 0)), rank)
    offset = 0
    for name in ctx.inputs:
        shape = ctx.shape(name)
        if shape is None or len(shape) != rank:
            return RuleResult()
        identity_all(res, name, y, rank, skip=(axis,))
        size = shape[axis]
        if not is_static(size):
            res.barrier(Space(y, axis), f"Concat {ctx.name}: input {name} has no static size on axis {axis}")
            return res
        if size:
            res.link(Space(name, axis), Space(y, axis), offset_pairs(size, offset))
        offset += size
    return res


# --------------------------------------------------------------------------- Split
def _split_sizes(ctx: RuleContext, size: int, n_out: int) -> list[int] | None:
    split = ctx.attr("split")
    if split is None and ctx.input(1):
        entries = ctx.input_entries(1)
        if entries is None or any(e.value is None for e in entries):
            return None
        split = [e.value for e in entries]
    if split is None:
        chunk = -(-size // n_out)
        split = [min(chunk, size - i * chunk) for i in range(n_out)]
    return [int(s) for s in split]


def _split_fixup(ctx: RuleContext, outs: list[Space]):
    node, opset = ctx.name, ctx.opset
    use_input = opset >= 13

    def apply(editor, kept):
        sizes = np.array([len(kept(s)) for s in outs], dtype=np.int64)
        if use_input:
            editor.set_input_constant(node, 1, sizes)
            editor.del_attr(node, "num_outputs")
        else:
            editor.set_attr(node, "split", [int(v) for v in sizes])
    return FixUp(node, tuple(outs), apply, "Split sizes")


@register("Split")
def split_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x = ctx.input(0)
    shape = ctx.shape(x)
    if shape is None:
        return res
    rank = len(shape)
    axis = normalize_axis(int(ctx.attr("axis", 0)), rank)
    outs = list(ctx.outputs)
    for o in outs:
        if o:
            identity_all(res, x, o, rank, skip=(axis,))
    size = shape[axis]
    sizes = _split_sizes(ctx, size, len(outs)) if is_static(size) else None
    if sizes is None:
        res.barrier(Space(x, axis), f"Split {ctx.name}: split sizes on axis {axis} are not known")
        return res
    offset = 0
    spaces = []
    for o, s in zip(outs, sizes):
        space = Space(o or f"{ctx.name}:unused{len(spaces)}", axis)
        spaces.append(space)
        if o and s:
            res.link(Space(x, axis), space, offset_pairs(s, offset)[:, ::-1].copy())
        offset += s
    if not all(outs):
        res.barrier(Space(x, axis), f"Split {ctx.name} has an unnamed output")
        return res
    res.fixups.append(_split_fixup(ctx, spaces))
    return res


# --------------------------------------------------------------------------- Slice
def _slice_params(ctx: RuleContext, rank: int):
    """Per sliced axis: (axis, start entry, end entry, step); None when unknown."""
    if ctx.opset < 10:
        starts, ends = ctx.attr("starts"), ctx.attr("ends")
        axes = ctx.attr("axes") or list(range(len(starts)))
        return [(normalize_axis(a, rank), Entry(s, ("attr", "starts", i)), Entry(e, ("attr", "ends", i)), 1)
                for i, (a, s, e) in enumerate(zip(axes, starts, ends))]
    starts, ends = ctx.input_entries(1), ctx.input_entries(2)
    if starts is None or ends is None:
        return None
    axes = ctx.input_entries(3) if ctx.input(3) else None
    steps = ctx.input_entries(4) if ctx.input(4) else None
    if (ctx.input(3) and axes is None) or (ctx.input(4) and steps is None):
        return None
    axes_v = [e.value for e in axes] if axes else list(range(len(starts)))
    steps_v = [e.value for e in steps] if steps else [1] * len(starts)
    if None in axes_v or None in steps_v:
        return None
    return [(normalize_axis(a, rank), s, e, st) for a, s, e, st in zip(axes_v, starts, ends, steps_v)]


def _slice_fixup(ctx: RuleContext, x_space: Space, start: int, end: int, s_entry: Entry, e_entry: Entry):
    node = ctx.name

    def apply(editor, kept):
        k = kept(x_space)
        new_start = int(np.searchsorted(k, start))
        new_end = new_start + int(np.count_nonzero((k >= start) & (k < end)))
        for entry, val in ((s_entry, new_start), (e_entry, new_end)):
            if entry.source[0] == "attr":
                editor.set_attr_element(node, entry.source[1], entry.source[2], val)
            else:
                editor.patch_constant(entry.source, val)
    return FixUp(node, (x_space,), apply, f"Slice bounds on {x_space}")


@register("Slice")
def slice_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult(view=True)
    x, y = ctx.input(0), ctx.output(0)
    shape = ctx.shape(x)
    if shape is None:
        return res
    rank = len(shape)
    params = _slice_params(ctx, rank)
    if params is None:
        for ax in range(rank):
            res.barrier(Space(x, ax), f"Slice {ctx.name}: bounds are computed at run time")
        return res
    sliced = {p[0]: p for p in params}
    for ax in range(rank):
        if ax not in sliced:
            res.link(Space(x, ax), Space(y, ax))
            continue
        _, s_entry, e_entry, step = sliced[ax]
        dim = shape[ax]
        if not is_static(dim) or s_entry.value is None or e_entry.value is None:
            res.barrier(Space(x, ax), f"Slice {ctx.name}: bounds on axis {ax} are not static")
            continue
        start, end, step_n = slice(s_entry.value, e_entry.value, step).indices(dim)
        if step_n != 1:
            res.barrier(Space(x, ax), f"Slice {ctx.name}: step {step} on axis {ax} is not supported for pruning")
            continue
        if s_entry.source is None or e_entry.source is None:
            res.barrier(Space(x, ax), f"Slice {ctx.name}: bounds on axis {ax} are computed at run time")
            continue
        count = max(0, end - start)
        if count:
            res.link(Space(y, ax), Space(x, ax), offset_pairs(count, start))
        if count == dim:
            continue  # the whole axis: bounds stay valid whatever is removed
        res.fixups.append(_slice_fixup(ctx, Space(x, ax), start, max(end, start), s_entry, e_entry))
    return res


# --------------------------------------------------------------------------- Gather
def _gather_fixup(ctx: RuleContext, x_space: Space, y_space: Space, idx: np.ndarray):
    node = ctx.name

    def apply(editor, kept):
        kx, ky = kept(x_space), kept(y_space)
        new = np.searchsorted(kx, idx[ky]).astype(idx.dtype)
        editor.set_input_constant(node, 1, new)
    return FixUp(node, (x_space, y_space), apply, f"Gather indices on {x_space}")


@register("Gather")
def gather_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult(view=True)
    x, ind, y = ctx.input(0), ctx.input(1), ctx.output(0)
    shape, ishape = ctx.shape(x), ctx.shape(ind)
    if shape is None or ishape is None:
        return res
    rank, irank = len(shape), len(ishape)
    axis = normalize_axis(int(ctx.attr("axis", 0)), rank)
    for ax in range(rank):
        if ax < axis:
            res.link(Space(x, ax), Space(y, ax))
        elif ax > axis:
            res.link(Space(x, ax), Space(y, ax - 1 + irank))
    idx = ctx.const(ind)
    for ax in range(irank):
        if idx is None:
            res.link(Space(ind, ax), Space(y, axis + ax))  # run-time indices: positions follow them
        else:
            res.explained.add(Space(ind, ax))  # constant indices are rewritten by the fix-up
    dim = shape[axis]
    if idx is None or irank != 1 or not is_static(dim):
        res.barrier(Space(x, axis), f"Gather {ctx.name} selects positions of axis {axis} "
                                    f"{'with run-time indices' if idx is None else 'with a scalar or multi-D index'}")
        return res
    idx = np.where(idx < 0, idx + dim, idx).astype(np.int64)
    pairs = np.stack([np.arange(len(idx), dtype=np.int64), idx], axis=1)
    res.link(Space(y, axis), Space(x, axis), pairs)
    res.fixups.append(_gather_fixup(ctx, Space(x, axis), Space(y, axis), idx))
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
        size_entry(res, ctx, entry, Space(y, oax), f"Expand {ctx.name} shape")
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
            size_entry(res, ctx, rep, Space(y, ax), f"Tile {ctx.name} repeats")
        else:
            res.barrier(Space(x, ax), f"Tile {ctx.name} repeats axis {ax}")
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
