"""Reshape and Flatten: axes merged and split, with exact position maps.

The input and output shapes are cut into **segments**: runs of consecutive axes whose sizes
have the same product on both sides (``[N, C, H, W] -> [N, C*H*W]`` has segments ``N | C H W``).
Within a segment, an input axis ``a`` and an output axis ``b`` are related position-wise
through the flat index: flat position ``f`` has coordinate ``a(f)`` in the input and ``b(f)`` in
the output, so ``a(f) ↔ b(f)`` must be removed together. Removing positions of ``a`` (a
rectangular cut of the input) then removes exactly the flat positions that the tied positions
of ``b`` remove from the output, so the reshape stays exact with only ``b``'s size changed.

When a segment has several candidate axes (channel shuffle ``C -> (g, C/g)``, flatten of
``C, H, W``) only one pair can carry the channels: that is a :class:`Choice`; the analysis picks
the pair whose axes are already channel spaces, else the preferred one (largest sizes, inner
first). The target-shape entry of the chosen output axis is made to follow the kept count
(literal ``-1`` adapts by itself, a constant is rewritten, ``Shape(t)[k]`` links ``t``'s axis).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from .base import CHANNEL, Choice, Factoring, FixUp, Link, RuleContext, RuleResult, Space, register
from .factors import dim_factor, factored_segment, scaled_size_fixup, symbolic_size
from .layout import is_static

MAX_SEGMENT_ELEMENTS = 1 << 26


# --------------------------------------------------------------------------- segments
def _factor(dims):
    """(integer part, sorted tuple of symbols) of a product, or None if any dim is unknown."""
    n, syms = 1, []
    for d in dims:
        f = dim_factor(d)
        if f is None:
            return None
        n *= f[0]
        syms.extend(f[1])
    return n, tuple(sorted(syms))


def align_segments(ins: tuple, outs: tuple) -> list[tuple[list[int], list[int], bool]]:
    """Cut both shapes into segments of equal product: [(in_axes, out_axes, known)]."""
    segs: list[tuple[list[int], list[int], bool]] = []
    i = j = 0
    while i < len(ins) and j < len(outs):
        ia, oa = [i], [j]
        i += 1
        j += 1
        while True:
            fi, fo = _factor([ins[k] for k in ia]), _factor([outs[k] for k in oa])
            if fi is None or fo is None:
                segs.append((ia + list(range(i, len(ins))), oa + list(range(j, len(outs))), False))
                return segs
            if fi == fo:
                break
            grow_in = (set(fo[1]) - set(fi[1])) or (not set(fi[1]) - set(fo[1]) and fi[0] < fo[0])
            if grow_in and i < len(ins):
                ia.append(i)
                i += 1
            elif not grow_in and j < len(outs):
                oa.append(j)
                j += 1
            else:
                segs.append((ia + list(range(i, len(ins))), oa + list(range(j, len(outs))), False))
                return segs
        segs.append((ia, oa, True))
    # leftovers must be size-1 axes: attach them to the last segment
    rest_in, rest_out = list(range(i, len(ins))), list(range(j, len(outs)))
    if rest_in or rest_out:
        ok = all(ins[k] == 1 for k in rest_in) and all(outs[k] == 1 for k in rest_out)
        if segs:
            a, b, known = segs[-1]
            segs[-1] = (a + rest_in, b + rest_out, known and ok)
        else:
            segs.append((rest_in, rest_out, ok))
    return segs


@lru_cache(maxsize=4096)
def _segments(ins: tuple, outs: tuple) -> tuple:
    """:func:`align_segments` of two shapes as tuples, worked out once per pair (a model's
    reshapes repeat their shapes layer after layer; the result is shared: never modified)."""
    return tuple((tuple(a), tuple(b), known) for a, b, known in align_segments(ins, outs))


def segment_pairs(din: list[int], dout: list[int], a: int, b: int) -> np.ndarray | None:
    """Position pairs (a-coordinate, b-coordinate) over the segment's flat index; None = identity."""
    total = int(np.prod(din, dtype=np.int64))
    f = np.arange(total, dtype=np.int64)
    stride_a = int(np.prod(din[a + 1:], dtype=np.int64))
    stride_b = int(np.prod(dout[b + 1:], dtype=np.int64))
    ca = (f // stride_a) % din[a]
    cb = (f // stride_b) % dout[b]
    if din[a] == dout[b] and np.array_equal(ca, cb):
        return None
    codes = np.unique(ca * dout[b] + cb)
    return np.stack([codes // dout[b], codes % dout[b]], axis=1)


# --------------------------------------------------------------------------- output shape
def _target_shape(ctx: RuleContext, xs: tuple, entries) -> tuple | None:
    """Output shape from the shape entries (symbols allowed), falling back to inference."""
    inferred = ctx.shape(ctx.output(0))
    if entries is None:
        return inferred
    allowzero = int(ctx.attr("allowzero", 0))
    out: list = []
    minus = None
    for k, e in enumerate(entries):
        if e.value == -1:
            minus = k
            out.append(None)
        elif e.value == 0 and not allowzero:
            out.append(xs[k] if k < len(xs) else None)
        elif e.value is not None:
            out.append(e.value)
        elif e.is_dim:
            tshape = ctx.shape(e.source[1])
            out.append(tshape[e.source[2]] if tshape is not None else None)
        else:
            out.append(None)
    if minus is not None:
        fin = _factor(xs)
        fo = _factor([d for k, d in enumerate(out) if k != minus])
        if fin is None or fo is None or fo[0] == 0 or fin[0] % fo[0]:
            return inferred
        syms = list(fin[1])
        for s in fo[1]:
            if s not in syms:
                return inferred
            syms.remove(s)
        out[minus] = symbolic_size(fin[0] // fo[0], tuple(syms))
    if inferred is not None and len(inferred) == len(out):
        out = [o if o is not None else d for o, d in zip(out, inferred)]
    return tuple(out)


def _entry_followup(ctx: RuleContext, entries, x: str, y: str, a: int, b: int, identity: bool, parts=None):
    """Links/fix-ups making output entry b follow, or a reason string when impossible.

    ``parts``: the spaces whose kept sizes make up the axis (default: the whole axis ``b``).
    """
    if entries is None:
        return [], [], None  # Flatten: the output shape is derived from the input at run time
    e = entries[b]
    if e.value == -1:
        return [], [], None
    if e.value == 0 and not int(ctx.attr("allowzero", 0)):
        if a == b and identity:
            return [], [], None
        return None, None, f"Reshape {ctx.name}: entry {b} copies input axis {b}, which does not carry these channels"
    if e.is_dim:
        return [Link(Space(e.source[1], e.source[2]), Space(y, b))], [], None
    parts = parts or (Space(y, b),)
    if e.is_scaled:
        return [], [scaled_size_fixup(ctx, parts, Space(e.source[1], e.source[2]), e.source[3])], None
    if e.is_const and not any(p.is_part for p in parts):
        space, source = Space(y, b), e.source

        def apply(editor, kept, space=space, source=source):
            editor.patch_constant(source, len(kept(space)))
        return [], [FixUp(ctx.name, (space,), apply, f"Reshape target size of {space}")], None
    return None, None, f"Reshape {ctx.name}: target size of axis {b} is computed at run time"


def reshape_links(ctx: RuleContext, x: str, y: str, xs: tuple, ys: tuple, entries) -> RuleResult:
    res = RuleResult()
    for in_axes, out_axes, known in _segments(tuple(xs), tuple(ys)):
        def plain(in_axes=in_axes, out_axes=out_axes, known=known) -> RuleResult:
            out = RuleResult()
            _plain_segment(out, ctx, x, y, xs, ys, in_axes, out_axes, known, entries)
            return out
        factored = factored_segment(ctx, x, y, xs, ys, in_axes, out_axes, entries,
                                    lambda r, b, same: _follow(r, ctx, entries, x, y, b, same)) if known else None
        if factored is None:
            res.merge(plain())
        else:
            res.factorings.append(Factoring(ctx.name, factored, plain))
    return res


def _follow(res: RuleResult, ctx: RuleContext, entries, x: str, y: str, b: int, same: bool) -> bool:
    """Make target entry ``b`` follow the kept size of output axis ``b``; False (with the reason
    recorded on the axis) when it cannot. A symbolic axis (``4*batch``) follows through its parts."""
    shape = ctx.shape(y)
    parts = tuple(lk.b for lk in res.links if lk.b.tensor == y and lk.b.axis == b)
    static = shape is not None and isinstance(shape[b], int)
    links, fixups, why = _entry_followup(ctx, entries, x, y, b, b, same, parts=None if static else parts)
    if why:
        for space in (Space(y, b),) + parts:
            res.barrier(space, why)
        return False
    res.links.extend(links)
    res.fixups.extend(fixups)
    res.size_uses.update(link.a for link in links)
    res.size_uses.update(s for fx in fixups for s in fx.spaces if s.tensor != y)
    return True


def _plain_segment(res: RuleResult, ctx: RuleContext, x: str, y: str, xs: tuple, ys: tuple, in_axes: list,
                   out_axes: list, known: bool, entries) -> None:
    """The segment with one factor carrying the channels (a :class:`Choice` when several can)."""
    ia = [k for k in in_axes if xs[k] != 1]
    oa = [k for k in out_axes if ys[k] != 1]
    if not ia and not oa:
        return
    dims = [xs[k] for k in in_axes] + [ys[k] for k in out_axes]
    symbolic_pair = (len(ia) == 1 and len(oa) == 1 and xs[ia[0]] == ys[oa[0]] and xs[ia[0]] is not None)
    if not symbolic_pair and (not known or not all(is_static(d) for d in dims)):
        why = f"{ctx.node.op_type} {ctx.name}: cannot relate axes {ia} of {x} to axes {oa} of {y} (dynamic sizes)"
        for k in ia:
            res.barrier(Space(x, k), why)
        for k in oa:
            res.barrier(Space(y, k), why)
        return
    din = [xs[k] for k in in_axes]
    dout = [ys[k] for k in out_axes]
    if symbolic_pair:
        options = [(ia[0], oa[0], None)]
    else:
        if int(np.prod(din, dtype=np.int64)) > MAX_SEGMENT_ELEMENTS:
            for k in ia:
                res.barrier(Space(x, k), f"{ctx.node.op_type} {ctx.name}: segment too large to map")
            return
        ranked = sorted(((a, b) for a in ia for b in oa),
                        key=lambda p: (-(xs[p[0]] * ys[p[1]]), -p[1], -p[0]))
        options = [(a, b, segment_pairs(din, dout, in_axes.index(a), out_axes.index(b))) for a, b in ranked]
    _add_options(res, ctx, x, y, options, entries)


def _add_options(res: RuleResult, ctx: RuleContext, x: str, y: str, options, entries) -> None:
    built = []
    reasons = []
    for a, b, pairs in options:
        links, fixups, why = _entry_followup(ctx, entries, x, y, a, b, pairs is None)
        if why:
            reasons.append((a, b, why))
            continue
        res.size_uses.update(link.a for link in links)
        res.size_uses.update(s for fx in fixups for s in fx.spaces if s.tensor != y)
        built.append((Link(Space(x, a), Space(y, b), pairs, CHANNEL), links, fixups))
    if not built:
        for a, b, why in reasons:
            res.barrier(Space(x, a), why)
            res.barrier(Space(y, b), why)
        return
    if len(built) == 1 and len(options) == 1:
        link, links, fixups = built[0]
        res.links.append(link)
        res.links.extend(links)
        res.fixups.extend(fixups)
        return
    opts = tuple(tuple([link] + links) for link, links, _ in built)
    spaces = [{link.a, link.b} for link, _, _ in built]
    common = frozenset(set.intersection(*spaces)) if spaces else frozenset()
    res.choices.append(Choice(ctx.name, opts, common, f"{ctx.node.op_type} {ctx.name}"))
    # fix-ups are attached per option: keyed by the option's main link
    for (link, _, fixups) in built:
        for fx in fixups:
            res.fixups.append(FixUp(fx.node, fx.spaces, fx.apply, fx.what))
    for a, b, why in reasons:
        res.barrier(Space(x, a), why)
        res.barrier(Space(y, b), why)


@register("Reshape", views=True)
def reshape_rule(ctx: RuleContext) -> RuleResult:
    res = _reshape(ctx)
    res.view = True
    return res


def _reshape(ctx: RuleContext) -> RuleResult:
    x, y = ctx.input(0), ctx.output(0)
    xs = ctx.shape(x)
    entries = ctx.input_entries(1)
    if xs is None:
        return RuleResult()
    ys = _target_shape(ctx, xs, entries)
    if ys is None:
        res = RuleResult()
        for k in range(len(xs)):
            res.barrier(Space(x, k), f"Reshape {ctx.name}: output shape unknown")
        return res
    if entries is None:
        res = reshape_links(ctx, x, y, xs, ys, None)
        # without known entries nothing can be made to follow: keep only identity-free ones out
        blocked = RuleResult()
        for k in range(len(xs)):
            blocked.barrier(Space(x, k), f"Reshape {ctx.name}: target shape is computed at run time")
        return blocked if (res.links or res.choices or res.factorings) else res
    return reshape_links(ctx, x, y, xs, ys, entries)


def _product(dims):
    f = _factor(dims)
    if f is None:
        return None
    n, syms = f
    if not syms:
        return n
    if len(syms) == 1 and n == 1:
        return syms[0]
    return None


@register("Flatten", views=True)
def flatten_rule(ctx: RuleContext) -> RuleResult:
    x, y = ctx.input(0), ctx.output(0)
    xs = ctx.shape(x)
    if xs is None:
        return RuleResult(view=True)
    axis = int(ctx.attr("axis", 1))
    axis = axis + len(xs) if axis < 0 else axis
    ys = (_product(xs[:axis]), _product(xs[axis:]))
    res = reshape_links(ctx, x, y, xs, ys, None)
    res.view = True
    return res
