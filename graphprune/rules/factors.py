"""Splits and merges of an axis as products of factors: the heads and head dims of attention.

The two shapes of one reshape segment (consecutive axes with the same product) number the same
flat positions in two mixed radixes. Their common refinement cuts the segment into **atoms**:
``[B, S, 32] -> [B, S, 4, 8]`` has the atoms 4 and 8; the input axis of 32 holds both (a part of
stride 8 and size 4, the heads; a part of stride 1 and size 8, the head dims) and each output axis
one. Linking atom to atom keeps every factor a channel space of its own, so whole heads and head
dims can be removed independently (removing a set of heads and a set of dims removes a product
of positions, which every reshape of the segment keeps exact).

A symbolic size (the batch) may lead both shapes: ``[B, 32] -> [4*B, 8]`` (heads folded into the
batch, as torch's MultiheadAttention exports it) has the atoms 4 and 8 after B; the heads are
then the part of stride 1 and size 4 of the axis of ``4*B`` positions.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from .base import FixUp, Link, RuleContext, RuleResult, Space


def dim_factor(d) -> tuple[int, tuple] | None:
    """(integer part, sorted symbols) of a size: ``8 -> (8, ())``, ``'batch' -> (1, ('batch',))``,
    ``'4*batch' -> (4, ('batch',))`` (onnxruntime's symbolic products); None when unknown."""
    if d is None:
        return None
    if isinstance(d, (int, np.integer)):
        return int(d), ()
    n, syms = 1, []
    for token in str(d).split("*"):
        token = token.strip()
        if token.isdigit():
            n *= int(token)
        elif token.isidentifier():
            syms.append(token)
        else:
            return 1, (str(d),)  # an expression we do not read: one opaque symbol
    return n, tuple(sorted(syms))


def symbolic_size(n: int, syms: tuple):
    """The size ``n * syms`` written as :func:`dim_factor` reads it (an int when there is no symbol)."""
    if not syms:
        return n
    return "*".join(([str(n)] if n != 1 else []) + list(syms))


def _suffix_products(sizes: list[int]) -> list[int]:
    out, acc = [1], 1
    for n in reversed(sizes):
        acc *= n
        out.append(acc)
    return out


def refine(din: list, dout: list):
    """Atoms of a segment ``din -> dout``, or None when the shapes do not refine each other.

    Returns ``(spans, in_axes, out_axes)``: ``spans`` are the atoms as ``(low, high)`` bounds of
    the flat position (size ``high // low``); ``in_axes[k]`` lists, for axis ``k`` of the input
    side, ``(span, stride)`` of every atom it holds (``stride``: inside the axis); the same for the
    output side. A symbol may only be the leading factor of the first axis of both sides.
    """
    fin, fout = [dim_factor(d) for d in din], [dim_factor(d) for d in dout]
    if not fin or not fout or None in fin or None in fout:
        return None
    if any(f[1] for f in fin[1:]) or any(f[1] for f in fout[1:]) or fin[0][1] != fout[0][1]:
        return None
    nin, nout = [f[0] for f in fin], [f[0] for f in fout]
    total = math.prod(nin)
    if total != math.prod(nout) or total == 0:
        return None
    bounds = sorted(set(_suffix_products(nin)) | set(_suffix_products(nout)))
    if any(high % low for low, high in zip(bounds, bounds[1:])):
        return None  # an interleaving reshape: no common refinement
    spans = list(zip(bounds, bounds[1:]))
    return spans, _side(nin, spans), _side(nout, spans)


def _side(sizes: list[int], spans) -> list[list[tuple]]:
    out, inner = [], 1
    for n in reversed(sizes):
        low, high = inner, inner * n
        out.append([((a, b), a // low) for a, b in spans if low <= a and b <= high])
        inner = high
    return list(reversed(out))


@lru_cache(maxsize=4096)
def _segment_atoms(din: tuple, dout: tuple) -> tuple | None:
    """:func:`refine` of a segment with, per atom span, ``(axis, stride)`` on each side, or None.
    The sizes of a model's reshapes repeat layer after layer: each pair is refined once (the
    result is shared between calls: never modified)."""
    refined = refine(list(din), list(dout))
    if refined is None:
        return None
    spans, in_atoms, out_atoms = refined
    where_in = {span: (k, stride) for k, atoms in enumerate(in_atoms) for span, stride in atoms}
    where_out = {span: (k, stride) for k, atoms in enumerate(out_atoms) for span, stride in atoms}
    return spans, in_atoms, out_atoms, where_in, where_out


def _axis_space(tensor: str, axis: int, atoms: list, span, stride: int, symbolic: bool) -> Space:
    """The whole axis when it holds only this atom (and no symbol), else its part."""
    size = span[1] // span[0]
    real = [a for a in atoms if a[0][1] // a[0][0] > 1]
    if not symbolic and len(real) == 1:
        return Space(tensor, axis)
    return Space(tensor, axis, (stride, size))


def factored_segment(ctx: RuleContext, x: str, y: str, xs: tuple, ys: tuple, in_axes: list, out_axes: list,
                     entries, follow) -> RuleResult | None:
    """The segment linked atom by atom, or None when no axis needs a part (nothing to factor).

    ``follow(res, b, same)`` makes target entry ``b`` follow its axis (returns False with a reason
    recorded when it cannot); ``same`` says whether output axis ``b`` is input axis ``b`` unchanged.
    """
    atoms = _segment_atoms(tuple(xs[k] for k in in_axes), tuple(ys[k] for k in out_axes))
    if atoms is None:
        return None
    spans, in_atoms, out_atoms, where_in, where_out = atoms
    symbolic_in = dim_factor(xs[in_axes[0]])[1]
    res = RuleResult()
    any_part = False
    linked_out = set()
    for span in spans:
        if span[1] // span[0] < 2:
            continue
        ki, si = where_in[span]
        ko, so = where_out[span]
        a = _axis_space(x, in_axes[ki], in_atoms[ki], span, si, bool(symbolic_in) and ki == 0)
        b = _axis_space(y, out_axes[ko], out_atoms[ko], span, so, bool(symbolic_in) and ko == 0)
        any_part |= a.is_part or b.is_part
        res.links.append(Link(a, b))
        linked_out.add(ko)
    if not any_part:
        return None
    for ko in sorted(linked_out):
        b = out_axes[ko]
        same = (ko < len(in_atoms) and in_axes[ko] == b and in_atoms[ko] == out_atoms[ko])
        if not follow(res, b, same):
            return res  # the reason is recorded; the analysis blocks what it touches
    if symbolic_in:
        why = (f"{ctx.node.op_type} {ctx.name}: the batch positions of axes {in_axes[0]} of {x} and "
               f"{out_axes[0]} of {y} are not channels")
        res.barrier(Space(x, in_axes[0]), why)
        res.barrier(Space(y, out_axes[0]), why)
    return res


def scaled_size_fixup(ctx: RuleContext, parts: tuple, source: Space, entry_source: tuple) -> FixUp:
    """A shape entry written ``Shape(source) * c`` for an axis whose static factors are ``parts``:
    ``c`` becomes their kept sizes' product divided by the kept size of ``source`` (by 1 when
    ``source`` has no static size: the batch of ``4 * batch``)."""
    shape = ctx.shape(source.tensor)
    source_static = shape is not None and isinstance(shape[source.axis], int)

    def apply(editor, kept, parts=parts, source=source, entry_source=entry_source):
        size = int(np.prod([len(kept(p)) for p in parts], dtype=np.int64))
        divisor = len(kept(source)) if source_static else 1
        editor.patch_constant(entry_source, size // max(divisor, 1))
    return FixUp(ctx.name, tuple(parts) + ((source,) if source_static else ()), apply,
                 f"scaled size of {parts[0].whole}")
