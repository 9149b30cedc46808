"""Sandwich models for the rule tests: ``x → Conv(3→C) [→ BN → Relu] → OP → Conv(C'→D) → y``.

Every builder returns a :class:`Case`: the model, what the analysis must find for the groups it
names (hand-computed slot count, or the exact barrier reason of a group that must block), what
pruning at ratio 0.5 must keep (initializer axis sizes) and checks of the attributes and
constants that must follow the kept channels. The arithmetic is in the comments next to each
expectation. ``C = 8`` and a 3×8×8 input unless a builder says otherwise.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from .base import Case, Expect, Pruned, Sandwich
from .edge_cases import (blocked, channel_const_4d, concat_twice, conv1d, foreign_domain, gather_negative,
                         groupnorm_export, if_node, negative_axes, resize_sizes_axes, shared_channel_const,
                         shared_weight, slice_chain, slice_shared_bounds, slice_two_axes, split_concat_swap,
                         sum_three)
from .elementwise import (BINARY, binary_activations, binary_const, concat_channels, concat_spatial, gather_split,
                          residual, silu, slice_channels, split, squeeze_excite, UNARY, unary)
from .layout import (channel_shuffle, depth_space, flatten_into, pad, pool, POOLS, reduce, reshape_3d, resize,
                     softmax, squeeze_unsqueeze, transpose_nhwc)
from .linear import (batchnorm, conv_dense, conv_depthwise, conv_grouped, conv_transpose, gemm, instancenorm,
                     matmul_activations, matmul_left, matmul_right, prelu)


# --------------------------------------------------------------------------- the case table
def _table() -> dict[str, Callable[[], Case]]:
    t: dict[str, Callable[[], Case]] = {
        "conv-dense": conv_dense, "conv-depthwise": partial(conv_depthwise, 1),
        "conv-depthwise-mult2": partial(conv_depthwise, 2), "conv-grouped": conv_grouped,
        "batchnorm": batchnorm, "instancenorm": instancenorm, "prelu": prelu,
        "matmul-const-right": matmul_right, "matmul-const-left": matmul_left,
        "matmul-activations": matmul_activations, "residual-add": residual, "silu": silu,
        "squeeze-excite": squeeze_excite, "concat-channels": concat_channels, "concat-spatial": concat_spatial,
        "gather-split": gather_split, "transpose-nhwc": transpose_nhwc, "channel-shuffle": channel_shuffle,
        "foreign-domain": foreign_domain, "if-node": if_node, "shared-weight": shared_weight,
        "concat-same-input-twice": concat_twice, "split-concat-swapped": split_concat_swap,
        "slice-shared-bounds": slice_shared_bounds, "gather-negative": gather_negative, "sum-three": sum_three,
        "mul-const-1c11": channel_const_4d, "conv1d": conv1d, "groupnorm-export": groupnorm_export,
        "DepthToSpace-opset9": partial(depth_space, "DepthToSpace", "DCR", 9),
        "slice-two-axes": slice_two_axes, "slice-chain": slice_chain, "resize-sizes18-axes": resize_sizes_axes,
        "shared-channel-const": shared_channel_const, "negative-axes": negative_axes,
    }
    t.update({f"convtranspose-{k}": partial(conv_transpose, k)
              for k in ("dense", "grouped", "depthwise", "depthwise2")})
    t.update({f"gemm-tA{a}-tB{b}-{'C' if c else 'noC'}": partial(gemm, a, b, c)
              for a in (0, 1) for b in (0, 1) for c in (True, False)})
    for op, opset, attrs in UNARY:
        form = attrs if isinstance(attrs, str) else "attrs"
        t[f"unary-{op}-opset{opset}" + (f"-{form}" if op in ("Clip", "Dropout") else "")] = partial(
            unary, op, opset, attrs)
    t.update({f"{op}-const-{'first' if f else 'second'}": partial(binary_const, op, f)
              for op in BINARY for f in (False, True)})
    t.update({f"{op}-activations": partial(binary_activations, op) for op in BINARY})
    t.update({f"split-{f}": partial(split, f) for f in ("attr", "input", "num_outputs", "default")})
    t.update({f"slice-{f}": partial(slice_channels, f) for f in ("attr9", "inputs", "neg_intmax", "neg_end")})
    t.update({f"pool-{op}": partial(pool, op) for op in POOLS})
    t.update({f"{op}-keepdims{k}-{f}": partial(reduce, op, k, f)
              for op in ("ReduceMean", "ReduceMax", "ReduceSum") for k in (0, 1) for f in ("attr", "input")})
    t.update({f"resize-{f}": partial(resize, f)
              for f in ("upsample9", "scales11", "scales13", "linear13", "sizes11", "sizes13", "sizes18")})
    t.update({f"pad-{f}": partial(pad, f) for f in ("attr9", "input13", "axes18", "reflect13", "crop13")})
    t.update({f"reshape-3d-{f}": partial(reshape_3d, f) for f in ("const", "zero", "minus", "shape")})
    t["reshape-3d-shape-opset13"] = partial(reshape_3d, "shape", 13)
    t.update({f"flatten-{f}": partial(flatten_into, f)
              for f in ("flatten", "flatten_N", "reshape_const", "reshape_zero", "computed")})
    t.update({f"squeeze-unsqueeze-opset{o}": partial(squeeze_unsqueeze, o) for o in (11, 13)})
    t.update({f"{op}-{m}": partial(depth_space, op, m)
              for op, m in (("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("SpaceToDepth", "DCR"))})
    t.update({f"{op}-opset{o}-axis{a}": partial(softmax, op, o, a)
              for op, o, a in (("Softmax", 13, None), ("Softmax", 13, 1), ("Softmax", 9, None),
                               ("Softmax", 11, 2), ("Softmax", 9, 3), ("LogSoftmax", 13, 2),
                               ("LogSoftmax", 11, 1))})
    t.update({f"{op}-opset{o}-axis{a}-nhwc": partial(softmax, op, o, a, True)
              for op, o, a in (("Softmax", 11, 2), ("Softmax", 13, 2), ("Softmax", 13, None),
                               ("LogSoftmax", 9, 3))})
    t.update({f"blocked-{k}": partial(blocked, k)
              for k in ("reduce_channels", "lrn", "pad_channels", "slice_step2", "gather_scalar",
                        "maxpool_indices", "graph_output")})
    return t


CASES = _table()

__all__ = ["CASES", "Case", "Expect", "Pruned", "Sandwich"]
