"""Ops that join, split or select positions: Concat, Split, Slice, Gather (offset and index maps,
with their sizes, bounds and indices rewritten to the kept positions)."""
from __future__ import annotations

import numpy as np

from .base import (QUERY_GROUP, Factoring, FixUp, RuleContext, RuleResult, Space, identity_all, normalize_axis,
                   offset_pairs, register)
from .layout import is_static
from .shapevalue import Entry


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


@register("Slice", views=True)
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


@register("Gather", views=True)
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
    plain = RuleResult()
    pairs = np.stack([np.arange(len(idx), dtype=np.int64), idx], axis=1)
    plain.link(Space(y, axis), Space(x, axis), pairs)
    plain.fixups.append(_gather_fixup(ctx, Space(x, axis), Space(y, axis), idx))
    factored = _repeated(ctx, x, y, axis, dim, idx)
    if factored is None:
        res.merge(plain)
    else:
        res.factorings.append(Factoring(ctx.name, factored, plain))
    return res


def _repeated(ctx: RuleContext, x: str, y: str, axis: int, dim: int, idx: np.ndarray) -> RuleResult | None:
    """Indices ``[0]*r + [1]*r + ...`` (``repeat_interleave`` of key/value heads): output position
    ``i * r + c`` is input position ``i``; the copy index ``c`` is a part of its own (the query heads
    that read one key/value head), so copies can go while the ratio of the rest stays."""
    count = len(idx)
    if count % dim or count // dim < 2 or not np.array_equal(idx, np.repeat(np.arange(dim), count // dim)):
        return None
    rep = count // dim
    res = RuleResult()
    copies = Space(y, axis, (1, rep)) if dim > 1 else Space(y, axis)
    if dim > 1:
        res.link(Space(x, axis), Space(y, axis, (rep, dim)))
    res.explained.add(copies)
    res.heads[copies] = QUERY_GROUP
    node, x_space, dtype = ctx.name, Space(x, axis), idx.dtype

    def apply(editor, kept):
        new = np.repeat(np.arange(len(kept(x_space))), len(kept(copies))).astype(dtype)
        editor.set_input_constant(node, 1, new)
    res.fixups.append(FixUp(node, (x_space, copies), apply, f"Gather indices on {x_space}"))
    return res
