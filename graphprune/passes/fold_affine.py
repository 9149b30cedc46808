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
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_ir as ir

from ..graph import edit
from ..graph.index import subgraph_reads
from ..graph.nodes import get_attr
from ..graph.shapes import infer_shapes
from .base import Pass, PassResult
from .normalize import NameNodesPass

log = logging.getLogger(__name__)

FLOAT_TYPES = (np.float16, np.float32, np.float64)
AFFINE_OPS = ("Mul", "Add", "Sub", "Div")
VIEW_OPS = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity")
ABSORBER_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
#: readers that see only a tensor's shape, which no fold changes
SHAPE_ONLY_OPS = ("Shape", "Size")


class NotFoldable(Exception):
    """Internal signal: this fold is refused; the message is the human-readable reason."""


# ----------------------------------------------------------------------------- records
@dataclass(frozen=True)
class FoldedNode:
    """One node that disappeared into its neighbours."""

    node: str
    op_type: str
    into: tuple[str, ...]
    #: "producer" (folded into the node before it) or "consumers" (into the nodes after it)
    direction: str

    def to_dict(self) -> dict:
        return {"node": self.node, "op_type": self.op_type, "into": list(self.into), "direction": self.direction}


@dataclass
class FoldPassResult(PassResult):
    folded: list[FoldedNode] = field(default_factory=list)
    #: (node name, reason) for every node the pass looked at and left in place
    skipped: list[tuple[str, str]] = field(default_factory=list)


# ----------------------------------------------------------------------------- affine math
@dataclass(frozen=True)
class ChannelAffine:
    """``y[c] = scale[c] · x[c] + shift[c]`` (float64 vectors of one length)."""

    scale: np.ndarray
    shift: np.ndarray

    @staticmethod
    def identity(count: int) -> "ChannelAffine":
        return ChannelAffine(np.ones(count), np.zeros(count))

    def then(self, after: "ChannelAffine") -> "ChannelAffine":
        """The affine that applies ``self`` first, then ``after``."""
        return ChannelAffine(after.scale * self.scale, after.scale * self.shift + after.shift)

    @property
    def has_shift(self) -> bool:
        return bool(np.any(self.shift != 0))

    def check_finite(self, where: str) -> None:
        if not (np.all(np.isfinite(self.scale)) and np.all(np.isfinite(self.shift))):
            raise NotFoldable(f"{where}: the folded scale/shift is not finite")


@dataclass(frozen=True)
class Channel:
    """Where the channels live in a tensor: ``axis`` of a rank-``rank`` tensor, ``count`` of them."""

    axis: int
    rank: int
    count: int


# ----------------------------------------------------------------------------- context
class FoldContext:
    """What folds read and write on the editable graph (whose links stay consistent by themselves).

    ``shapes`` (from :func:`graphprune.graph.infer_shapes`) may be shared between passes: folds
    keep every surviving tensor's shape (a spliced node's output name moves to the producer).
    """

    def __init__(self, model: ir.Model, shapes: dict | None = None):
        self.model, self.graph = model, model.graph
        self.pinned = subgraph_reads(self.graph)
        self.shapes = infer_shapes(model) if shapes is None else shapes
        self.names = edit.Names(self.graph)
        self.removed: list[ir.Node] = []
        self._removed_ids: set[int] = set()

    # -- reading
    def opset(self) -> int:
        opsets = self.model.opset_imports
        return opsets.get("", opsets.get("ai.onnx", 0))

    def live_nodes(self) -> list[ir.Node]:
        """The nodes, in graph order (a snapshot: check :meth:`is_removed` while folding)."""
        return list(self.graph)

    def is_removed(self, node: ir.Node) -> bool:
        return id(node) in self._removed_ids

    def value_uses(self, value: ir.Value) -> list:
        """Readers of ``value``'s contents (Shape/Size read only its shape)."""
        return [u for u in value.uses() if u.node.op_type not in SHAPE_ONLY_OPS]

    @staticmethod
    def is_constant(value: ir.Value | None) -> bool:
        """An initializer (initializers also declared as graph inputs, the legacy exporter habit
        that IR < 4 required, are weights here, as in :class:`GraphIndex`; they are never
        overwritten, see :meth:`write_param`)."""
        return value is not None and value.is_initializer()

    def is_real_input(self, value: ir.Value) -> bool:
        return value.is_graph_input() and not value.is_initializer()

    @staticmethod
    def array(value: ir.Value) -> np.ndarray:
        return np.asarray(value.const_value.numpy())

    def shape(self, value: ir.Value):
        entry = self.shapes.get(value.name)
        return entry[0] if entry else None

    def rank(self, value: ir.Value) -> int | None:
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def float_param(self, node: ir.Node, index: int, what: str) -> np.ndarray:
        """A constant float input of ``node``, or a refusal naming it."""
        value = node.inputs[index] if index < len(node.inputs) else None
        if value is None:
            raise NotFoldable(f"{node.op_type} {node.name} has no {what}")
        if self.is_real_input(value):
            raise NotFoldable(f"{what} {value.name!r} of {node.name} is a graph input, not a constant")
        if not self.is_constant(value):
            raise NotFoldable(f"{what} {value.name!r} of {node.name} is not a constant initializer")
        array = self.array(value)
        if array.dtype.type not in FLOAT_TYPES:
            raise NotFoldable(f"{what} {value.name!r} of {node.name} has dtype {array.dtype}, not a float type")
        return array

    def intermediate_problem(self, value: ir.Value) -> str | None:
        """Why ``value`` cannot vanish inside a fold (None: it can)."""
        if self.is_real_input(value):
            return f"{value.name!r} is a graph input"
        if value.is_graph_output():
            return f"{value.name!r} is also a graph output"
        if value.name in self.pinned:
            return f"{value.name!r} is read by a subgraph"
        readers = self.value_uses(value)
        if len(readers) != 1:
            others = ", ".join(sorted({u.node.name for u in readers}))
            return f"{value.name!r} feeds {len(readers)} inputs ({others})"
        return None

    # -- editing
    def _owned(self, value: ir.Value, node: ir.Node, index: int) -> bool:
        """Whether the initializer may be overwritten in place for this one input slot."""
        uses = list(value.uses())
        return (len(uses) == 1 and uses[0].node is node and uses[0].idx == index and not value.is_graph_output()
                and not value.is_graph_input() and value.name not in self.pinned)

    def write_param(self, node: ir.Node, index: int, array: np.ndarray, dtype, role: str) -> None:
        """Give input ``index`` of ``node`` the value ``array`` (cast to ``dtype``): in place when
        the initializer belongs to this slot alone, else as a new initializer (copy on write)."""
        array = np.asarray(array).astype(dtype)
        value = node.inputs[index] if index < len(node.inputs) else None
        if value is not None and self._owned(value, node, index):
            edit.write_initializer(value, array)
        else:
            value = edit.add_initializer(self.model, self.names.fresh(f"{node.name}_{role}"), array)
            edit.set_input(node, index, value)
        self.shapes[value.name] = (tuple(array.shape), onnx.helper.np_dtype_to_tensor_dtype(array.dtype))

    @staticmethod
    def set_attr(node: ir.Node, name: str, value) -> None:
        edit.set_attribute(node, name, value)

    def drop(self, node: ir.Node) -> None:
        """Forget ``node`` (its inputs lose a reader); the caller has rewired its outputs."""
        for i in range(len(node.inputs)):
            node.replace_input_with(i, None)
        self.removed.append(node)
        self._removed_ids.add(id(node))

    def splice_out(self, node: ir.Node, data_index: int) -> None:
        """Remove ``y = node(x, …)`` by making the producer of ``x`` write ``y`` directly.

        Valid because ``x`` has no other value reader and is not a graph output (checked by the
        chain); Shape/Size readers of ``x`` read ``y`` instead (an affine node keeps the shape).
        """
        x, y = node.inputs[data_index], node.outputs[0]
        self.drop(node)
        edit.replace_value(y, x)

    def bypass(self, node: ir.Node, data_index: int) -> None:
        """Remove ``y = node(x, …)`` by making every reader of ``y`` read ``x``."""
        x, y = node.inputs[data_index], node.outputs[0]
        self.drop(node)
        y.replace_all_uses_with(x)

    def commit(self) -> None:
        """Delete the removed nodes from the graph."""
        if self.removed:
            edit.remove_nodes(self.graph, self.removed)
            self.removed, self._removed_ids = [], set()


# ----------------------------------------------------------------------------- node affines
def batchnorm_training_reason(ctx: FoldContext, node: ir.Node) -> str | None:
    """Why a BatchNormalization is not in inference form (None when it is)."""
    if any(v.name for v in node.outputs[1:]):
        return "declares training outputs (running/saved mean and variance), so it runs in training mode"
    if get_attr(node, "training_mode", 0):
        return "training_mode=1 (normalizes with batch statistics)"
    if get_attr(node, "spatial", 1) == 0:
        return "spatial=0 (per-element statistics) is not supported"
    if ctx.opset() < 7 and get_attr(node, "is_test", 0) != 1:
        return "is_test=0 (training form of opset < 7)"
    return None


def batchnorm_affine(ctx: FoldContext, node: ir.Node) -> ChannelAffine:
    """``s = γ / √(σ² + ε)``, ``t = β − μ s`` in float64, or a refusal."""
    reason = batchnorm_training_reason(ctx, node)
    if reason:
        raise NotFoldable(f"BatchNormalization {node.name} {reason}")
    gamma, beta, mean, var = (ctx.float_param(node, i, what).astype(np.float64).reshape(-1)
                              for i, what in ((1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")))
    if not gamma.size == beta.size == mean.size == var.size:
        raise NotFoldable(f"BatchNormalization {node.name}: parameters have different lengths")
    eps = float(np.float32(get_attr(node, "epsilon", 1e-5)))
    denom = var + eps
    if np.any(denom <= 0):
        raise NotFoldable(f"BatchNormalization {node.name}: variance + epsilon is not positive")
    scale = gamma / np.sqrt(denom)
    affine = ChannelAffine(scale, beta - mean * scale)
    affine.check_finite(f"BatchNormalization {node.name}")
    return affine


def per_channel_vector(value: np.ndarray, channel: Channel, where: str) -> np.ndarray:
    """The constant of a broadcasting Mul/Add/Sub/Div as a float64 vector over the channels."""
    if value.ndim > channel.rank:
        raise NotFoldable(f"{where}: constant of rank {value.ndim} would broadcast the rank-{channel.rank} data up")
    shape = (1,) * (channel.rank - value.ndim) + tuple(value.shape)
    for axis, dim in enumerate(shape):
        allowed = (1, channel.count) if axis == channel.axis else (1,)
        if dim not in allowed:
            raise NotFoldable(f"{where}: constant of shape {list(value.shape)} is not per-channel on axis "
                              f"{channel.axis} of {channel.count} channels")
    flat = value.astype(np.float64).reshape(-1)
    return flat if flat.size == channel.count else np.full(channel.count, flat[0])


def constant_operand(ctx: FoldContext, node: ir.Node) -> int | None:
    """Index of the data input of a binary op whose other input is a constant (else None)."""
    if node.op_type not in AFFINE_OPS or node.domain not in ("", "ai.onnx") or len(node.inputs) != 2:
        return None
    const = [ctx.is_constant(name) for name in node.inputs]
    if const == [False, True]:
        return 0
    if const == [True, False]:
        return 1
    return None


def data_index(ctx: FoldContext, node: ir.Node) -> int | None:
    """Input index carrying the data through an affine or view node (None: neither)."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "BatchNormalization":
        return 0 if batchnorm_training_reason(ctx, node) is None else None
    if node.op_type in VIEW_OPS:
        return 0
    return constant_operand(ctx, node)


def binary_affine(ctx: FoldContext, node: ir.Node, index: int, channel: Channel) -> ChannelAffine:
    where = f"{node.op_type} {node.name}"
    value = ctx.array(node.inputs[1 - index])
    if value.dtype.type not in FLOAT_TYPES:
        raise NotFoldable(f"{where}: constant has dtype {value.dtype}, not a float type")
    k = per_channel_vector(value, channel, where)
    ones, zeros = np.ones(channel.count), np.zeros(channel.count)
    if node.op_type == "Mul":
        return ChannelAffine(k, zeros)
    if node.op_type == "Add":
        return ChannelAffine(ones, k)
    if node.op_type == "Sub":
        return ChannelAffine(ones, -k) if index == 0 else ChannelAffine(-ones, k)
    if index == 1:
        raise NotFoldable(f"{where}: constant divided by the data is not affine")
    if np.any(k == 0):
        raise NotFoldable(f"{where}: division by zero in the constant")
    return ChannelAffine(1.0 / k, zeros)


def node_affine(ctx: FoldContext, node: ir.Node, index: int, channel: Channel) -> ChannelAffine:
    """The per-channel affine an affine node applies on ``channel``, or a refusal."""
    if node.op_type == "BatchNormalization":
        if channel.axis != 1:
            raise NotFoldable(f"BatchNormalization {node.name} normalizes axis 1, the channels are on axis {channel.axis}")
        affine = batchnorm_affine(ctx, node)
        if affine.scale.size != channel.count:
            raise NotFoldable(f"BatchNormalization {node.name} has {affine.scale.size} channels, expected {channel.count}")
        return affine
    return binary_affine(ctx, node, index, channel)


# ----------------------------------------------------------------------------- views
def _suffix(shape, start: int) -> int | None:
    n = 1
    for d in shape[start:]:
        if d is None:
            return None
        n *= d
    return n


def view_channel(ctx: FoldContext, node: ir.Node, channel: Channel) -> Channel:
    """Where ``channel`` lands after a view op, or a refusal (channel axis split or merged)."""
    if node.op_type == "Identity":
        return channel
    if node.op_type == "Transpose":
        perm = get_attr(node, "perm") or list(range(channel.rank - 1, -1, -1))
        return Channel(list(perm).index(channel.axis), channel.rank, channel.count)
    out_shape = ctx.shape(node.outputs[0])
    in_shape = ctx.shape(node.inputs[0])
    if out_shape is None or in_shape is None:
        raise NotFoldable(f"{node.op_type} {node.name}: shapes unknown, cannot follow the channel axis")
    after = _suffix(in_shape, channel.axis + 1)
    for axis, dim in enumerate(out_shape):
        if dim == channel.count and after is not None and _suffix(out_shape, axis + 1) == after:
            return Channel(axis, len(out_shape), channel.count)
    raise NotFoldable(f"{node.op_type} {node.name} does not keep the {channel.count} channels on one axis "
                      f"({list(in_shape)} -> {list(out_shape)})")


# ----------------------------------------------------------------------------- absorbers
def _weight_dtype(ctx: FoldContext, node: ir.Node):
    return ctx.array(node.inputs[1]).dtype


def _conv_channel(ctx, node) -> Channel:
    w = ctx.float_param(node, 1, "weight")
    return Channel(1, w.ndim, w.shape[0])


def _convtranspose_channel(ctx, node) -> Channel:
    w = ctx.float_param(node, 1, "weight")
    return Channel(1, w.ndim, w.shape[1] * get_attr(node, "group", 1))


def _gemm_channel(ctx, node) -> Channel:
    b = ctx.float_param(node, 1, "weight B")
    if ctx.opset() < 7:
        raise NotFoldable(f"Gemm {node.name}: opset < 7 Gemm broadcasting is not supported")
    if len(node.inputs) > 2 and node.inputs[2] and not ctx.is_constant(node.inputs[2]):
        raise NotFoldable(f"Gemm {node.name}: input C {node.inputs[2].name!r} is not a constant")
    return Channel(1, 2, b.shape[0] if get_attr(node, "transB", 0) else b.shape[1])


def _matmul_channel(ctx, node) -> Channel:
    w = ctx.float_param(node, 1, "weight")
    if w.ndim != 2:
        raise NotFoldable(f"MatMul {node.name}: weight has rank {w.ndim}, only 2-D weights are folded")
    rank = ctx.rank(node.outputs[0])
    if rank is None:
        raise NotFoldable(f"MatMul {node.name}: output rank unknown")
    return Channel(rank - 1, rank, w.shape[1])


def _batchnorm_channel(ctx, node) -> Channel:
    scale = ctx.float_param(node, 1, "scale")
    rank = ctx.rank(node.inputs[0])
    if rank is None:
        raise NotFoldable(f"BatchNormalization {node.name}: input rank unknown")
    return Channel(1, rank, scale.size)


def _bias(ctx, node, index: int, count: int) -> np.ndarray:
    if index < len(node.inputs) and node.inputs[index]:
        return ctx.float_param(node, index, "bias").astype(np.float64).reshape(-1)
    return np.zeros(count)


def _absorb_conv(ctx, node, affine: ChannelAffine) -> bool:
    w = ctx.array(node.inputs[1])
    scale = affine.scale.reshape((-1,) + (1,) * (w.ndim - 1))
    ctx.write_param(node, 1, w.astype(np.float64) * scale, w.dtype, "weight")
    absorb_bias(ctx, node, 2, affine, w.dtype)
    return True


def absorb_bias(ctx, node, index: int, affine: ChannelAffine, dtype) -> None:
    """``b' = s b + t`` on the bias input ``index`` (created when absent and ``t ≠ 0``)."""
    has_bias = index < len(node.inputs) and bool(node.inputs[index])
    if has_bias or affine.has_shift:
        bias = _bias(ctx, node, index, affine.scale.size)
        ctx.write_param(node, index, affine.scale * bias + affine.shift, dtype, "bias")


def convtranspose_out_channels(cin: int, cout_per_group: int, group: int) -> np.ndarray:
    """``o[i, j]``: the output channel that weight element ``[i, j]`` of a ConvTranspose writes."""
    cin_per_group = cin // group
    return (np.arange(cin)[:, None] // cin_per_group) * cout_per_group + np.arange(cout_per_group)[None, :]


def _absorb_convtranspose(ctx, node, affine: ChannelAffine) -> bool:
    w = ctx.array(node.inputs[1])
    out = convtranspose_out_channels(w.shape[0], w.shape[1], get_attr(node, "group", 1))
    scale = affine.scale[out].reshape(out.shape + (1,) * (w.ndim - 2))
    ctx.write_param(node, 1, w.astype(np.float64) * scale, w.dtype, "weight")
    absorb_bias(ctx, node, 2, affine, w.dtype)
    return True


def _absorb_gemm(ctx, node, affine: ChannelAffine) -> bool:
    b = ctx.array(node.inputs[1])
    scale = affine.scale[:, None] if get_attr(node, "transB", 0) else affine.scale[None, :]
    ctx.write_param(node, 1, b.astype(np.float64) * scale, b.dtype, "B")
    absorb_gemm_c(ctx, node, affine, b.dtype)
    return True


def absorb_gemm_c(ctx, node, affine: ChannelAffine, dtype) -> None:
    """``C' = β s C + t`` on a Gemm's C (created when absent and ``t ≠ 0``), then ``β = 1``."""
    beta = float(get_attr(node, "beta", 1.0))
    has_c = len(node.inputs) > 2 and bool(node.inputs[2])
    if has_c or affine.has_shift:
        c = ctx.array(node.inputs[2]).astype(np.float64) if has_c else np.zeros(1)
        ctx.write_param(node, 2, beta * c * affine.scale + affine.shift, dtype, "C")
        if beta != 1.0:
            ctx.set_attr(node, "beta", 1.0)


def _absorb_matmul(ctx, node, affine: ChannelAffine) -> bool:
    w = ctx.array(node.inputs[1])
    ctx.write_param(node, 1, w.astype(np.float64) * affine.scale[None, :], w.dtype, "weight")
    return not affine.has_shift


def _absorb_batchnorm(ctx, node, affine: ChannelAffine) -> bool:
    batchnorm_affine(ctx, node)  # refuses training form and broken parameters
    gamma, beta = ctx.array(node.inputs[1]), ctx.array(node.inputs[2])
    ctx.write_param(node, 1, affine.scale * gamma.astype(np.float64), gamma.dtype, "scale")
    ctx.write_param(node, 2, affine.scale * beta.astype(np.float64) + affine.shift, beta.dtype, "bias")
    return True


@dataclass(frozen=True)
class Absorber:
    """How one op type takes a per-channel affine of its output into its parameters."""

    channel: callable  # (ctx, node) -> Channel, or NotFoldable
    absorb: callable   # (ctx, node, affine) -> bool: True when the shift was absorbed too
    has_bias: bool


ABSORBERS = {
    "Conv": Absorber(_conv_channel, _absorb_conv, True),
    "ConvTranspose": Absorber(_convtranspose_channel, _absorb_convtranspose, True),
    "Gemm": Absorber(_gemm_channel, _absorb_gemm, True),
    "MatMul": Absorber(_matmul_channel, _absorb_matmul, False),
    "BatchNormalization": Absorber(_batchnorm_channel, _absorb_batchnorm, True),
}


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
    steps = [Step(target, index, target.op_type not in VIEW_OPS)]
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
        steps.insert(0, Step(upstream, through, upstream.op_type not in VIEW_OPS))
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
    dtype = ctx.array(absorber.inputs[1]).dtype
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
def prepare(model: ir.Model, shapes: dict | None = None) -> tuple[FoldContext, bool]:
    """Unique node names (folds key nodes by name), then a fresh context."""
    named = NameNodesPass()(model).modified
    return FoldContext(model, shapes), named


class FoldAffinePass(Pass):
    """Fold per-channel Mul/Add/Sub/Div by constants into the Conv/ConvTranspose/Gemm/MatMul
    (or inference BatchNormalization) that produces their input; chains fold in one go."""

    name = "fold-affine"

    def __init__(self, batchnorm: bool = True, shapes: dict | None = None):
        #: False: leave BatchNormalization nodes untouched (neither folded through nor into)
        self.batchnorm = batchnorm
        self.shapes = shapes

    def run(self, model: ir.Model) -> FoldPassResult:
        ctx, modified = prepare(model, self.shapes)
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
