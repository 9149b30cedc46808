"""Sandwich cases of elementwise ops, Concat, Split, Slice and Gather."""
from __future__ import annotations

from onnx import TensorProto

from .base import INT_MAX, Case, Pruned, Sandwich
from .linear import equal_positions


# --------------------------------------------------------------------------- elementwise
#: (op, opset, attrs): attribute values, or "inputs" for Clip bounds given as inputs
UNARY = [
    ("Relu", 17, {}), ("LeakyRelu", 17, {"alpha": 0.1}), ("Sigmoid", 17, {}),
    ("HardSigmoid", 17, {"alpha": 0.2, "beta": 0.5}), ("HardSwish", 17, {}), ("Tanh", 17, {}),
    ("Clip", 9, {"min": -0.5, "max": 1.5}), ("Clip", 13, "inputs"), ("Clip", 11, "min-only"),
    ("Elu", 17, {"alpha": 0.7}), ("Selu", 17, {}), ("Softplus", 17, {}), ("Mish", 18, {}),
    ("Gelu", 20, {}), ("Erf", 17, {}), ("Sqrt", 17, {}), ("Identity", 17, {}),
    ("Dropout", 9, {"ratio": 0.3}), ("Dropout", 13, "inputs"), ("Cast", 17, {}),
]


def unary(op: str, opset: int, attrs) -> Case:
    s = Sandwich(f"{op}{opset}", opset=opset)
    h, hw = s.head(8, act="relu" if op == "Sqrt" else None)  # Sqrt on non-negative values
    if attrs == "inputs":
        bounds = [s.b.scalar(-0.5), s.b.scalar(1.5)] if op == "Clip" else [s.b.scalar(0.3)]
        y = s.b.node(op, [h, *bounds])
    elif attrs == "min-only":
        y = s.b.node(op, [h, s.b.scalar(-0.5)])
    elif op == "Cast":
        y = s.b.cast(s.b.cast(h, TensorProto.DOUBLE), TensorProto.FLOAT)
    else:
        y = s.b.node(op, [h], **attrs)
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


BINARY = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum")


def binary_const(op: str, const_first: bool) -> Case:
    """OP(x, k) or OP(k, x) with k [C,1,1]: k follows the channels. x in (0,1) keeps Div/Pow finite."""
    s = Sandwich(f"{op}_const")
    h, hw = s.head(8, act="sigmoid")
    k = s.b.channel_const(8, 0.5, 1.5)
    y = s.b.node(op, [k, h] if const_first else [h, k])
    tw = s.tail(y, 8)
    s.expect(hw, 8, head=(hw, 0, 4), k=(k, 0, 4), tail=(tw, 1, 4))
    return s.case()


def binary_activations(op: str) -> Case:
    """OP(relu(conv a), sigmoid(conv b)): both convs' output channels are one group of 8 slots."""
    s = Sandwich(f"{op}_act")
    a, aw = s.head(8)
    b, bw = s.head(8, act="sigmoid")
    tw = s.tail(s.b.node(op, [a, b]), 8)
    s.expect(aw, 8, a=(aw, 0, 4), b=(bw, 0, 4), tail=(tw, 1, 4))
    s.check(lambda p: equal_positions(p, (aw, 0), (bw, 0), (tw, 1)))
    return s.case()


def residual() -> Case:
    """h + BN(Conv(h)): the inner conv's input and output axes are both in h's group."""
    s = Sandwich("residual")
    h, hw = s.head(8)
    m, mw = s.conv(h, 8, 8)
    tw = s.tail(s.b.act(s.b.add(h, s.b.batchnorm(m, 8)), "relu"), 8)
    s.expect(hw, 8, head=(hw, 0, 4), mid_out=(mw, 0, 4), mid_in=(mw, 1, 4), tail=(tw, 1, 4))
    return s.case()


def silu() -> Case:
    s = Sandwich("silu")
    h, hw = s.head(8, act="silu")
    tw = s.tail(h, 8)
    s.expect(hw, 8, head=(hw, 0, 4), tail=(tw, 1, 4))
    return s.case()


def squeeze_excite() -> Case:
    """x * sigmoid(Conv(relu(Conv(GAP(x))))) with gate [N,C,1,1]; the squeeze width (4) is its own group."""
    s = Sandwich("se")
    h, hw = s.head(8)
    g = s.b.conv(s.b.node("GlobalAveragePool", [h]), 8, 4, 1, bias=True)
    rw, rb = s.b.nodes[-1].input[1:]
    g = s.b.conv(s.b.act(g, "relu"), 4, 8, 1, bias=True)
    ew, eb = s.b.nodes[-1].input[1:]
    tw = s.tail(s.b.mul(h, s.b.act(g, "sigmoid")), 8)
    s.expect(hw, 8, head=(hw, 0, 4), r_in=(rw, 1, 4), e_out=(ew, 0, 4), e_bias=(eb, 0, 4), tail=(tw, 1, 4))
    s.expect(rw, 4, r_out=(rw, 0, 2), r_bias=(rb, 0, 2), e_in=(ew, 1, 2))
    return s.case()


# --------------------------------------------------------------------------- Concat / Split / Slice / Gather
def concat_channels() -> Case:
    """[a(8) ; b(6)] on axis 1: one group of 14 slots; the tail keeps a's kept and 8 + b's kept."""
    s = Sandwich("concat_c")
    a, aw = s.head(8)
    b, bw = s.head(6)
    tw = s.tail(s.b.concat([a, b], axis=1), 14)
    s.expect(aw, 14, tail=(tw, 1, 7))

    def fn(p: Pruned):
        ka, kb = p.kept_positions(aw, 0), p.kept_positions(bw, 0)
        assert len(ka) + len(kb) == 7 and ka and kb
        assert p.kept_positions(tw, 1) == ka + [8 + k for k in kb]
    s.check(fn)
    return s.case()


def concat_spatial() -> Case:
    """Concat on H: channels of both inputs are the same channels (8 slots)."""
    s = Sandwich("concat_h")
    a, aw = s.head(8)
    b, bw = s.head(8)
    tw = s.tail(s.b.concat([a, b], axis=2), 8)
    s.expect(aw, 8, a=(aw, 0, 4), b=(bw, 0, 4), tail=(tw, 1, 4))
    s.check(lambda p: equal_positions(p, (aw, 0), (bw, 0), (tw, 1)))
    return s.case()


def _parts_follow(p: Pruned, head: str, tails: list[str], bounds: list[tuple[int, int]], sizes: list[int]) -> None:
    """Each part keeps exactly the head's kept positions in its range, renumbered from 0."""
    kept = p.kept_positions(head, 0)
    for tw, (lo, hi), size in zip(tails, bounds, sizes):
        part = [k - lo for k in kept if lo <= k < hi]
        assert p.kept_positions(tw, 1) == part, f"{tw}: kept {p.kept_positions(tw, 1)}, expected {part}"
        assert size == len(part)


def split(form: str) -> Case:
    """Split 8 channels into [3, 5] ([4, 4] for the equal forms): 8 slots; sizes follow the kept counts."""
    opset, sizes = {"attr": (11, [3, 5]), "input": (13, [3, 5]), "num_outputs": (18, [4, 4]),
                    "default": (13, [4, 4])}[form]
    s = Sandwich(f"split_{form}", opset=opset)
    h, hw = s.head(8)
    if form == "default":
        parts = s.b.node("Split", [h], n_out=2, axis=1)
    else:
        parts = s.b.split(h, sizes)
    node = s.last
    tails = [s.tail(pt, n, f"y{i}") for i, (pt, n) in enumerate(zip(parts, sizes))]
    s.expect(hw, 8, head=(hw, 0, 4))
    bounds = [(0, sizes[0]), (sizes[0], 8)]

    def fn(p: Pruned):
        got = p.attr(node, "split") if opset < 13 else p.const_input(node, 1)
        assert sum(got) == 4 and p.attr(node, "num_outputs") is None
        _parts_follow(p, hw, tails, bounds, got)
    s.check(fn)
    return s.case()


def sliced(kept: list[int], lo: int, hi: int) -> tuple[int, int, list[int]]:
    """New (start, end) of a slice [lo, hi) after pruning, and the kept positions inside, renumbered."""
    start = sum(k < lo for k in kept)
    inside = [k - lo for k in kept if lo <= k < hi]
    return start, start + len(inside), inside


def slice_channels(form: str) -> Case:
    """Slice channels [lo, hi) of 8: 8 slots; starts/ends become (#kept < lo, + #kept in range)."""
    opset, start, end, lo, hi = {"attr9": (9, 2, 7, 2, 7), "inputs": (13, 2, 7, 2, 7),
                                 "neg_intmax": (13, -6, INT_MAX, 2, 8), "neg_end": (13, 1, -1, 1, 7)}[form]
    s = Sandwich(f"slice_{form}", opset=opset)
    h, hw = s.head(8)
    y = s.b.slice(h, start, end)
    node = s.last
    tw = s.tail(y, hi - lo)
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        start, end, inside = sliced(p.kept_positions(hw, 0), lo, hi)
        got = (p.attr(node, "starts")[0], p.attr(node, "ends")[0]) if opset < 10 else (
            p.const_input(node, 1)[0], p.const_input(node, 2)[0])
        assert got == (start, end), f"Slice bounds {got}"
        assert p.kept_positions(tw, 1) == inside
    s.check(fn)
    return s.case()


def gather_split() -> Case:
    """Gather [0,1,2,3] and [6,4,5] on axis 1 (channel 7 unused): 8 slots; indices renumbered."""
    s = Sandwich("gather")
    h, hw = s.head(8)
    index_sets = ([0, 1, 2, 3], [6, 4, 5])
    nodes, tails = [], []
    for i, idx in enumerate(index_sets):
        y = s.b.node("Gather", [h, s.b.ints(idx)], axis=1)
        nodes.append(s.last)
        tails.append(s.tail(y, len(idx), f"y{i}"))
    s.expect(hw, 8, head=(hw, 0, 4))

    def fn(p: Pruned):
        kept = p.kept_positions(hw, 0)
        for node, tw, idx in zip(nodes, tails, index_sets):
            rows = [i for i, c in enumerate(idx) if c in kept]
            assert p.kept_positions(tw, 1) == rows
            assert p.const_input(node, 1) == [kept.index(idx[i]) for i in rows]
    s.check(fn)
    return s.case()
