"""Fold per-channel affine ops into the linear node that produces their input.

A **per-channel affine** on channel axis ``a`` maps ``x`` to ``y`` with
``y[..., c, ...] = s[c] · x[..., c, ...] + t[c]``. Each of these is one:

==========================  =========================  ===============================
node                        scale ``s``                shift ``t``
==========================  =========================  ===============================
``Mul(x, k)``               ``k``                      0
``Add(x, k)``               1                          ``k``
``Sub(x, k)`` / ``Sub(k, x)``  1 / −1                  −``k`` / ``k``
``Div(x, k)``               1/``k``                    0
``BatchNormalization``      ``γ / √(σ² + ε)``          ``β − μ · γ / √(σ² + ε)``
==========================  =========================  ===============================

where ``k`` is a constant that is a scalar or varies along the channel axis only (after
numpy broadcasting it never grows the data tensor). Two affines compose as
``(s₂, t₂) ∘ (s₁, t₁) = (s₂ s₁, s₂ t₁ + t₂)``, and ops that only re-view the data (Reshape,
Flatten, Squeeze, Unsqueeze, Transpose, Identity) leave them unchanged as long as they keep the
channel axis whole: they move it from axis ``a`` to axis ``b`` when the elements after it are
equally many on both sides (``∏ in[a+1:] = ∏ out[b+1:]``, ``in[a] = out[b] = C``), so every
element keeps its channel.

A chain ``P → (affine | view)* → A`` whose every intermediate tensor has one reader and is not
a graph output collapses into ``P`` (the **absorber**), because ``s·(P(x)) + t`` is again a
linear node of the same kind:

* ``Conv``: ``y[o] = Σ W[o,·] ⋆ x + b[o]`` → ``W'[o] = s[o] W[o]``, ``b' = s b + t`` (any
  ``group``: output channels are weight axis 0).
* ``ConvTranspose``: weight is ``[Cin, Cout/g, k…]``; element ``W[i, j]`` writes output channel
  ``o(i, j) = ⌊i / (Cin/g)⌋ · (Cout/g) + j``, so ``W'[i, j] = s[o(i, j)] W[i, j]`` and
  ``b' = s b + t`` (the bias also fills ``output_padding``, where ``s·b + t`` is right too).
* ``Gemm``: ``Y = α A'B' + β C`` → columns of ``B'`` scaled by ``s``, ``C' = β s C + t`` with
  ``β' = 1``.
* ``MatMul`` with a constant 2-D weight: ``W'[:, n] = s[n] W[:, n]``; it has no bias input, so a
  nonzero ``t`` stays as one ``Add`` (the last affine node of the chain becomes ``Add(·, t)``).
* ``BatchNormalization`` (inference form) absorbs what follows it when nothing upstream can:
  ``γ' = s γ``, ``β' = s β + t``.

Everything is computed in float64 and cast back to the weight's dtype. Only initializers are
parameters (normalization lifts Constant nodes first); real graph inputs never are. A weight
read by another node, by a subgraph, or declared as a graph input (legacy exporters) is never
overwritten: the folded value goes to a new initializer. Tensors inside a chain may have
Shape/Size readers (folds keep shapes) but no other reader, and must not be graph outputs or
read by subgraphs. The chain's last tensor keeps its name, so graph outputs keep theirs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_ir as ir

from ..graph import edit
from .absorbers import ABSORBER_OPS, ABSORBERS, absorb_bias, absorb_gemm_c  # noqa: F401 - re-exported
from .affines import (batchnorm_affine, batchnorm_training_reason, constant_operand, data_index,  # noqa: F401
                      node_affine, view_channel)
from .base import Pass
from .fold_context import (Channel, ChannelAffine, FoldContext, FoldedNode, FoldPassResult,  # noqa: F401
                           NotFoldable)
from .normalize import NameNodesPass

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- chains
@dataclass
class Step:
    node: ir.Node
    index: int           # data input
    affine: bool         # False: a view op
    channel: Channel | None = None  # channel layout of this node's output (set by plan)


@dataclass
class Chain:
    """``absorber → steps…``: the affine/view nodes between a linear node and the target."""

    absorber: ir.Node
    steps: list[Step]
    affine: ChannelAffine | None = None

    @property
    def affine_steps(self) -> list[Step]:
        return [s for s in self.steps if s.affine]


def _is_absorber(ctx: FoldContext, node: ir.Node, tensor: ir.Value) -> bool:
    return (node.op_type in ABSORBER_OPS and node.domain in ("", "ai.onnx")
            and node.outputs[0] == tensor and not ctx.is_constant(node.inputs[0]))


def walk_back(ctx: FoldContext, target: ir.Node, index: int,
              batchnorm: bool = True) -> tuple[Chain | None, Chain | None, str]:
    """Walk from ``target`` up through single-reader affine/view nodes.

    Returns ``(chain to a Conv/ConvTranspose/Gemm/MatMul or None, chain to the nearest
    inference BatchNormalization on the way or None, reason the walk stopped)``. With
    ``batchnorm=False`` a BatchNormalization ends the walk (it is neither folded nor changed).
    """
    steps = [Step(target, index, not ctx.is_view(target))]
    nearest_bn = None
    tensor = target.inputs[index]
    while True:
        problem = ctx.intermediate_problem(tensor)
        if problem:
            return None, nearest_bn, problem
        upstream = tensor.producer()
        if upstream is None:
            return None, nearest_bn, f"{tensor.name!r} has no producer"
        if _is_absorber(ctx, upstream, tensor):
            return Chain(upstream, steps), nearest_bn, ""
        if upstream.op_type == "BatchNormalization" and not batchnorm:
            return None, None, f"input comes from BatchNormalization {upstream.name}, which is kept"
        through = data_index(ctx, upstream)
        if through is None or upstream.outputs[0] != tensor:
            return None, nearest_bn, (f"input comes from {upstream.op_type} {upstream.name}, which cannot absorb "
                                      "it (only Conv, ConvTranspose, Gemm and MatMul with constant weights)")
        if upstream.op_type == "BatchNormalization" and nearest_bn is None:
            nearest_bn = Chain(upstream, list(steps))
        steps.insert(0, Step(upstream, through, not ctx.is_view(upstream)))
        tensor = upstream.inputs[through]


def plan(ctx: FoldContext, chain: Chain) -> Chain:
    """Follow the channel axis down the chain and compose its affines (or refuse)."""
    absorber = ABSORBERS[chain.absorber.op_type]
    channel = absorber.channel(ctx, chain.absorber)
    affine = ChannelAffine.identity(channel.count)
    for step in chain.steps:
        if step.affine:
            affine = affine.then(node_affine(ctx, step.node, step.index, channel))
        else:
            channel = view_channel(ctx, step.node, channel)
        step.channel = channel
    affine.check_finite(f"{chain.absorber.op_type} {chain.absorber.name}")
    chain.affine = affine
    return chain


def find_chain(ctx: FoldContext, target: ir.Node, index: int, batchnorm: bool = True) -> Chain:
    """The planned chain that folds ``target`` upstream, or NotFoldable with the reason.

    ``batchnorm=False``: BatchNormalization nodes are left exactly as they are."""
    full, nearest_bn, reason = walk_back(ctx, target, index, batchnorm)
    if full is not None:
        try:
            return plan(ctx, full)
        except NotFoldable as exc:
            reason = str(exc)
    if nearest_bn is not None:
        return plan(ctx, nearest_bn)
    raise NotFoldable(reason)


def is_pointless(chain: Chain) -> bool:
    """A bias-less absorber followed by a lone Add/Sub: folding would only rewrite that Add."""
    steps = chain.affine_steps
    return (not ABSORBERS[chain.absorber.op_type].has_bias and len(steps) == 1
            and steps[0].node.op_type in ("Add", "Sub") and bool(np.all(chain.affine.scale == 1)))


def _turn_into_add(ctx: FoldContext, step: Step, shift: np.ndarray, dtype) -> None:
    """Rewrite the step's node in place as ``Add(x, t)`` with ``t`` laid out on its channel axis."""
    node, channel = step.node, step.channel
    shape = (channel.count,) + (1,) * (channel.rank - channel.axis - 1)
    data = node.inputs[step.index]
    for i in range(len(node.inputs)):
        node.replace_input_with(i, None)
    node.resize_inputs(2)
    node.attributes.clear()
    node.resize_outputs(1)
    node.op_type, node.domain = "Add", ""
    edit.set_input(node, 0, data)
    ctx.write_param(node, 1, shift.reshape(shape), dtype, "shift")


def apply_chain(ctx: FoldContext, chain: Chain) -> list[FoldedNode]:
    """Fold a planned chain; returns the nodes that disappeared."""
    absorber = chain.absorber
    dtype = ctx.dtype(absorber.inputs[1])
    shift_done = ABSORBERS[absorber.op_type].absorb(ctx, absorber, chain.affine)
    steps = chain.affine_steps
    keep_last = not shift_done
    gone = steps[:-1] if keep_last else steps
    folded = [FoldedNode(s.node.name, s.node.op_type, (absorber.name,), "producer") for s in gone]
    for step in gone:
        ctx.splice_out(step.node, step.index)
    if keep_last:  # a bias-less absorber: the composed shift stays behind as one Add
        last = steps[-1]
        if last.node.op_type != "Add":
            folded.append(FoldedNode(last.node.name, last.node.op_type, (absorber.name,), "producer"))
        _turn_into_add(ctx, last, chain.affine.shift, dtype)
    log.debug("folded %s into %s %s", [f.node for f in folded], absorber.op_type, absorber.name)
    return folded


# ----------------------------------------------------------------------------- the pass
def prepare(model: ir.Model, shapes: dict | None = None, strict: bool = False) -> tuple[FoldContext, bool]:
    """Unique node names (folds key nodes by name), then a fresh context."""
    named = NameNodesPass()(model).modified
    return FoldContext(model, shapes, strict_initializer_inputs=strict), named


class FoldAffinePass(Pass):
    """Fold per-channel Mul/Add/Sub/Div by constants into the Conv/ConvTranspose/Gemm/MatMul
    (or inference BatchNormalization) that produces their input; chains fold in one go."""

    name = "fold-affine"

    def __init__(self, batchnorm: bool = True, shapes: dict | None = None, strict: bool = False):
        #: False: leave BatchNormalization nodes untouched (neither folded through nor into)
        self.batchnorm = batchnorm
        self.shapes = shapes
        self.strict = strict

    def run(self, model: ir.Model) -> FoldPassResult:
        ctx, modified = prepare(model, self.shapes, self.strict)
        folded: list[FoldedNode] = []
        for node in ctx.live_nodes():
            if ctx.is_removed(node) or constant_operand(ctx, node) is None:
                continue
            try:
                chain = find_chain(ctx, node, constant_operand(ctx, node), self.batchnorm)
            except NotFoldable as exc:
                log.debug("%s %s stays: %s", node.op_type, node.name, exc)
                continue
            if not is_pointless(chain):
                folded.extend(apply_chain(ctx, chain))
        ctx.commit()
        notes = [f"folded {len(folded)} per-channel Mul/Add/Sub/Div nodes"] if folded else []
        return FoldPassResult(model, modified or bool(folded), notes, folded=folded)
