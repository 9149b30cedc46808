"""What every fold shares: the refusal signal, records of folded nodes, the per-channel affine
algebra, and :class:`FoldContext`, the folds' view of the editable graph."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_ir as ir

from ..analysis.evaluate import evaluate_rule
from ..graph import edit
from ..graph.index import GraphIndex, subgraph_reads
from ..graph.shapes import infer_shapes
from ..rules import DEFAULT_RULES
from ..rules.base import Space, channel_maps
from .base import PassResult

log = logging.getLogger(__name__)

FLOAT_TYPES = (np.float16, np.float32, np.float64)
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

    def __init__(self, model: ir.Model, shapes: dict | None = None, rules=None,
                 strict_initializer_inputs: bool = False):
        self.model, self.graph = model, model.graph
        #: initializers also declared as graph inputs are weights (written in place, keeping their
        #: names) unless strict: then they may be overridden at run time and are never written
        self.strict_initializer_inputs = strict_initializer_inputs
        self.pinned = subgraph_reads(self.graph)
        self.shapes = infer_shapes(model) if shapes is None else shapes
        self.names = edit.Names(self.graph)
        self.rules = DEFAULT_RULES if rules is None else rules
        self._index: GraphIndex | None = None
        self._rule_results: dict[int, object] = {}
        self.removed: list[ir.Node] = []
        self._removed_ids: set[int] = set()

    # -- what the rules say about a node (folding keeps no op knowledge of its own)
    def rule(self, node: ir.Node):
        """The node's rule result (None without a rule), from an index of the current graph."""
        key = id(node)
        if key not in self._rule_results:
            if self._index is None:
                self._index = GraphIndex(self.model, shapes=self.shapes)
            self._rule_results[key] = evaluate_rule(self.rules, self._index, node)
        return self._rule_results[key]

    def is_view(self, node: ir.Node) -> bool:
        """Whether the node only moves the elements of its first input (Transpose, Reshape...)."""
        if not self.rules.may_be_view(node.domain or "", node.op_type, self._opset(node)):
            return False
        result = self.rule(node)
        return result is not None and result.view

    def _opset(self, node: ir.Node) -> int:
        opsets = self.model.opset_imports
        domain = node.domain or ""
        return opsets.get(domain, opsets.get("ai.onnx", 0) if domain == "" else 0)

    def channel_maps(self, node: ir.Node, axis: int) -> list:
        """(output axis, position pairs or None for identity) of the node's input-0 ``axis``."""
        result = self.rule(node)
        if result is None:
            return []
        return channel_maps(result, Space(node.inputs[0].name, axis), node.outputs[0].name)

    def edited(self) -> None:
        """The graph changed: rule results are read again from a new index."""
        self._index = None
        self._rule_results.clear()

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

    @staticmethod
    def dtype(value: ir.Value) -> np.dtype:
        """A constant's element type (its bytes are not read)."""
        return np.dtype(value.const_value.dtype.numpy())

    def shape(self, value: ir.Value):
        entry = self.shapes.get(value.name)
        return entry[0] if entry else None

    def rank(self, value: ir.Value) -> int | None:
        shape = self.shape(value)
        return None if shape is None else len(shape)

    def float_param(self, node: ir.Node, index: int, what: str) -> np.ndarray:
        """A constant float input of ``node``, or a refusal naming it."""
        return self.array(self._float_constant(node, index, what))

    def float_shape(self, node: ir.Node, index: int, what: str) -> tuple[int, ...]:
        """The shape of :meth:`float_param` (with its refusals), without reading the tensor's bytes."""
        return tuple(int(d) for d in self._float_constant(node, index, what).const_value.shape)

    def _float_constant(self, node: ir.Node, index: int, what: str) -> ir.Value:
        value = node.inputs[index] if index < len(node.inputs) else None
        if value is None:
            raise NotFoldable(f"{node.op_type} {node.name} has no {what}")
        if self.is_real_input(value):
            raise NotFoldable(f"{what} {value.name!r} of {node.name} is a graph input, not a constant")
        if not self.is_constant(value):
            raise NotFoldable(f"{what} {value.name!r} of {node.name} is not a constant initializer")
        dtype = self.dtype(value)
        if dtype.type not in FLOAT_TYPES:
            raise NotFoldable(f"{what} {value.name!r} of {node.name} has dtype {dtype}, not a float type")
        return value

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
        overridable = value.is_graph_input() and (self.strict_initializer_inputs or not value.is_initializer())
        return (len(uses) == 1 and uses[0].node is node and uses[0].idx == index and not value.is_graph_output()
                and not overridable and value.name not in self.pinned)

    def write_param(self, node: ir.Node, index: int, array: np.ndarray, dtype, role: str) -> None:
        """Give input ``index`` of ``node`` the value ``array`` (cast to ``dtype``): in place when
        the initializer belongs to this slot alone, else as a new initializer (copy on write)."""
        array = np.asarray(array).astype(dtype, copy=False)
        value = node.inputs[index] if index < len(node.inputs) else None
        if value is not None and self._owned(value, node, index):
            edit.write_initializer(value, array)
        else:  # a copy, named after what it replaces (a new bias after the node's weight)
            value = edit.add_initializer(self.model, self.names.fresh(_derived_name(node, value, role)), array)
            edit.set_input(node, index, value)
            self.edited()
        self.shapes[value.name] = (tuple(array.shape), onnx.helper.np_dtype_to_tensor_dtype(array.dtype))

    def add_after(self, node: ir.Node, constant: np.ndarray, role: str) -> None:
        """Add ``constant`` to the node's output with a new ``Add`` (its readers keep their tensor)."""
        out = node.outputs[0].name
        add = edit.add_after(self.model, node, constant, self.names,
                             (f"{out}__before_{role}", _derived_name(node, None, role), f"{node.name}_add_{role}"))
        out = add.outputs[0]
        self.shapes[add.inputs[0].name] = self.shapes.get(out.name, (None, 0))
        self.shapes[add.inputs[1].name] = (tuple(constant.shape), onnx.helper.np_dtype_to_tensor_dtype(constant.dtype))
        self.edited()

    @staticmethod
    def set_attr(node: ir.Node, name: str, value) -> None:
        edit.set_attribute(node, name, value)

    def drop(self, node: ir.Node) -> None:
        """Forget ``node`` (its inputs lose a reader); the caller has rewired its outputs."""
        for i in range(len(node.inputs)):
            node.replace_input_with(i, None)
        self.removed.append(node)
        self._removed_ids.add(id(node))
        self.edited()

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


def _derived_name(node: ir.Node, replaced: ir.Value | None, role: str) -> str:
    """The name of a new parameter: ``<old>_folded`` for a copy, ``<prefix>.bias`` for a new bias
    of a weight named ``<prefix>.weight`` (framework style), else ``<weight>_<role>`` or
    ``<node>_<role>``."""
    if replaced is not None and replaced.name:
        return f"{replaced.name}_folded"
    weight = node.inputs[1].name if len(node.inputs) > 1 and node.inputs[1] is not None else ""
    if role in ("bias", "C") and weight.endswith("weight"):
        return weight[: -len("weight")] + "bias"
    return f"{weight}_{role}" if weight else f"{node.name}_{role}"
