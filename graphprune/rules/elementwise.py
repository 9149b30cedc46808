"""Elementwise ops: activations, binary ops with broadcasting, normalizations per channel."""
from __future__ import annotations

from .base import CHANNEL, PRODUCER, Link, RuleContext, RuleResult, Space, identity_all, register

#: ops computing each output element from the same element of the single data input
UNARY_OPS = (
    "Relu", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu", "Selu", "Celu",
    "Softplus", "Softsign", "Mish", "Gelu", "Erf", "Sqrt", "Identity", "Cast", "Neg", "Abs", "Exp",
    "Log", "Reciprocal", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
    "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "ThresholdedRelu", "Shrink", "Not", "IsNaN", "IsInf",
)
#: ops broadcasting all their inputs against each other (numpy rules)
BROADCAST_OPS = ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum", "Mean", "Where", "PRelu",
                 "And", "Or", "Xor", "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Mod",
                 "BitShift")
#: for a constant operand of these ops, the value that makes a removed channel inert (dead test)
_NEUTRAL = {("Div", 1): 1.0, ("Pow", 1): 1.0}


def _unary(ctx: RuleContext, extra_outputs: tuple = ()) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x)
    if rank is None:
        rank = ctx.rank(y)
    if rank is None:
        return res  # nothing known: every reached axis becomes a barrier with the default reason
    identity_all(res, x, y, rank)
    for out in extra_outputs:
        if ctx.used(out) and ctx.rank(out) == rank:
            identity_all(res, x, out, rank)
    return res


@register(*(op for op in UNARY_OPS if op != "Identity"))
def unary_rule(ctx: RuleContext) -> RuleResult:
    return _unary(ctx)


@register("Identity", views=True)
def identity_rule(ctx: RuleContext) -> RuleResult:
    res = _unary(ctx)
    res.view = True
    return res


@register("Clip")
def clip_rule(ctx: RuleContext) -> RuleResult:
    res = _unary(ctx)
    for i in (1, 2):  # min/max: scalars (opset >= 11)
        t = ctx.input(i)
        if t and (ctx.rank(t) or 0) > 0:
            for ax in range(ctx.rank(t)):
                res.barrier(Space(t, ax), f"Clip bound {t} is not a scalar")
    return res


@register("Dropout")
def dropout_rule(ctx: RuleContext) -> RuleResult:
    return _unary(ctx, extra_outputs=(ctx.output(1),))


def broadcast_links(ctx: RuleContext, res: RuleResult, inputs: list[str], out: str, role=CHANNEL,
                    tag: str = "") -> None:
    """Link each input axis whose size equals the output's to the output axis (numpy broadcasting)."""
    oshape = ctx.shape(out)
    if oshape is None:
        return
    rank = len(oshape)
    # the output's spaces are made once for all inputs, links appended directly (20k links at 20k nodes)
    out_spaces = [Space(out, k) for k in range(rank)]
    links = res.links
    for idx, name in enumerate(inputs):
        if not name:
            continue
        ishape = ctx.shape(name)
        if ishape is None:
            continue
        shift = rank - len(ishape)
        neutral = _NEUTRAL.get((ctx.node.op_type, idx), 0.0)
        for ax, dim in enumerate(ishape):
            odim = oshape[ax + shift]
            if dim == 1 and odim != 1:
                continue  # broadcast: this axis does not carry channels
            if dim is None or odim is None or dim == odim:
                links.append(Link(Space(name, ax), out_spaces[ax + shift], None, role, tag, neutral))
            else:
                res.barrier(Space(name, ax), f"{ctx.node.op_type} broadcasts axis {ax} of {name} "
                                             f"(size {dim}) against size {odim}")


@register(*BROADCAST_OPS)
def broadcast_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    broadcast_links(ctx, res, ctx.inputs, ctx.output(0))
    return res


@register("BatchNormalization")
def batchnorm_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x) or ctx.rank(y)
    if rank is None:
        return res
    identity_all(res, x, y, rank)
    tags = ("bn_scale", "bn_bias", "bn_mean", "bn_var")
    for i, tag in enumerate(tags, start=1):
        t = ctx.input(i)
        if t:
            res.link(Space(t, 0), Space(y, 1), role=CHANNEL, tag=tag, neutral=1.0 if tag == "bn_var" else 0.0)
    # training-mode outputs (running mean/var) are per channel too
    for i in (1, 2):
        out = ctx.output(i)
        if out and ctx.used(out):
            res.link(Space(out, 0), Space(y, 1))
    return res


@register("InstanceNormalization")
def instancenorm_rule(ctx: RuleContext) -> RuleResult:
    res = RuleResult()
    x, y = ctx.input(0), ctx.output(0)
    rank = ctx.rank(x) or ctx.rank(y)
    if rank is None:
        return res
    res.link(Space(x, 0), Space(y, 0))
    res.link(Space(x, 1), Space(y, 1))
    for ax in range(2, rank):
        res.barrier(Space(x, ax), "InstanceNormalization normalizes over spatial axes")
    res.link(Space(ctx.input(1), 0), Space(y, 1), role=CHANNEL, tag="in_scale")
    res.link(Space(ctx.input(2), 0), Space(y, 1), role=PRODUCER, tag="in_bias")
    return res
