"""The rule vocabulary: spaces, links, choices, fix-ups, and the registry.

A **space** is one axis of one tensor, or one *part* of it: the coordinate ``(position // stride)
% size`` of an axis that holds several factors (an axis of ``heads * head_dim`` positions has a
heads part and a head-dim part). A **rule** looks at one node and says which spaces of its inputs
and outputs hold the same channels (a :class:`Link` with a position map), which spaces it
explains without coupling them to anything (``explained``), why it cannot explain others
(``reasons``), which alternatives exist when an axis is split or merged (a :class:`Choice`, or a
:class:`Factoring` that links the factors of the axis one by one), which axes hold attention
heads (``heads``), and which attributes or constants must follow the kept channels
(:class:`FixUp`). Rules never touch the model; they only describe it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np
import onnx_ir as ir

from ..graph.index import GraphIndex
from ..graph.nodes import get_attr, input_name, inputs, output_name, outputs
from .pairs import block_pairs, offset_pairs  # noqa: F401 - the position maps rules build links with

log = logging.getLogger(__name__)

#: roles a parameter slice can play (the role of an initializer side of a link)
PRODUCER = "producer"   # writes the channel (Conv weight axis 0, bias, Gemm weight output axis)
CONSUMER = "consumer"   # reads the channel in a contraction (Conv weight axis 1, Gemm/MatMul input axis)
CHANNEL = "channel"     # per-channel elementwise parameter (BN scale/shift/stats, PRelu slope, Mul/Add constants)
OPERAND = "operand"     # writes one side of a product of two activations inside an op (a fused attention's
                        # query/key projection or bias): removing a position removes its term of the product
ROLES = (PRODUCER, CONSUMER, CHANNEL, OPERAND)

#: what a rule says an axis holds (``RuleResult.heads``): independent attention heads (or groups of
#: query heads that share one key/value head) ...
HEADS = "heads"
#: ... or copies of one key/value head that different query heads read (repeat_kv's repeated axis)
QUERY_GROUP = "query group"


class Space(NamedTuple):
    """One axis of one tensor, or one part of it; channels live here.

    ``part`` is ``()`` for the whole axis, else ``(stride, size)``: the space whose position ``c``
    is every position ``p`` of the axis with ``(p // stride) % size == c`` (the heads or the head
    dims of an axis of ``heads * head_dim`` positions; the heads of an axis of ``heads * batch``).
    A named tuple: the analysis hashes and compares spaces millions of times on large graphs.
    """

    tensor: str
    axis: int
    part: tuple = ()

    def to_dict(self) -> dict:
        return {"tensor": self.tensor, "axis": self.axis, "part": list(self.part)}

    @property
    def whole(self) -> "Space":
        """The axis this space is a part of (itself when it is a whole axis)."""
        return Space(self.tensor, self.axis) if self.part else self

    @property
    def is_part(self) -> bool:
        return bool(self.part)

    def __str__(self) -> str:
        if self.part:
            stride, size = self.part
            return f"{self.tensor}[axis {self.axis}, {size} parts of stride {stride}]"
        return f"{self.tensor}[axis {self.axis}]"


def part_coordinates(whole_size: int, part: tuple) -> np.ndarray:
    """Position of each position of a whole axis of ``whole_size`` in its part ``(stride, size)``."""
    stride, size = part
    return (np.arange(whole_size, dtype=np.int64) // stride) % size


def space_size(shape, space: Space):
    """Size of ``space`` given its tensor's shape (None when unknown)."""
    if space.part:
        return space.part[1]
    if shape is None or space.axis >= len(shape):
        return None
    return shape[space.axis]


class Link(NamedTuple):
    """Positions of ``a`` and ``b`` that must be removed together (a named tuple, made often).

    ``pairs`` is an int64 array of shape (k, 2): position in ``a``, position in ``b``.
    ``None`` means identity (the spaces have equal size and position i is position i).
    ``role``/``tag``/``neutral`` describe whichever side is an initializer: its role, a
    semantic tag (``bn_scale``, ``bias``...), and the value that makes one of its slices inert.
    """

    a: Space
    b: Space
    pairs: np.ndarray | None = None
    role: str = CHANNEL
    tag: str = ""
    neutral: float = 0.0

    @property
    def identity(self) -> bool:
        return self.pairs is None


@dataclass(frozen=True)
class FixUp:
    """An attribute or constant of ``node`` that must follow the kept positions.

    ``apply(editor, kept)`` is called by surgery; ``kept(space)`` returns the sorted kept
    positions of a space (all positions when the space is not pruned). ``spaces`` lists the
    spaces it reads, so surgery only runs it when one of them changes.
    """

    node: str
    spaces: tuple[Space, ...]
    apply: Callable
    what: str = ""


@dataclass(frozen=True)
class Choice:
    """Mutually exclusive link sets (e.g. which factor of a split axis carries the channels).

    ``options`` are tried in order of preference; ``common`` are spaces every option touches.
    The analysis picks the option whose own spaces are already reached, or the first.
    """

    node: str
    options: tuple[tuple[Link, ...], ...]
    common: frozenset
    what: str = ""

    def own_spaces(self, i: int) -> set[Space]:
        out = set()
        for link in self.options[i]:
            out.add(link.a)
            out.add(link.b)
        return out - set(self.common)


@dataclass
class RuleResult:
    """What a rule says about its node (see the module docstring)."""

    links: list[Link] = field(default_factory=list)
    explained: set[Space] = field(default_factory=set)
    reasons: dict[Space, str] = field(default_factory=dict)
    fixups: list[FixUp] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    #: spaces whose run-time size this node reads from a shape input and makes follow (Shape(t)[k] copies)
    size_uses: set[Space] = field(default_factory=set)
    #: the node only moves the elements of its first input (same values, new places: Transpose,
    #: Reshape...), so a per-channel affine commutes with it along the links' position maps
    view: bool = False
    #: spaces that hold attention heads: ``HEADS`` (a batch axis of a product of two activations,
    #: an attention op's heads) or ``QUERY_GROUP`` (copies of one key/value head)
    heads: dict = field(default_factory=dict)
    #: splits and merges linked factor by factor, each with what the node says when the axis is
    #: kept whole instead (the analysis decides, see :class:`Factoring`)
    factorings: list = field(default_factory=list)

    def link(self, a: Space, b: Space, pairs=None, role=CHANNEL, tag="", neutral=0.0) -> None:
        self.links.append(Link(a, b, pairs, role, tag, neutral))

    def barrier(self, space: Space, reason: str) -> None:
        self.reasons[space] = reason

    def merge(self, other: "RuleResult") -> None:
        """Add everything ``other`` says (its ``view`` flag excepted)."""
        self.links.extend(other.links)
        self.explained |= other.explained
        self.reasons.update(other.reasons)
        self.fixups.extend(other.fixups)
        self.choices.extend(other.choices)
        self.size_uses |= other.size_uses
        self.heads.update(other.heads)
        self.factorings.extend(other.factorings)


class Factoring:
    """A split or merge of an axis linked factor by factor, or kept whole.

    ``factored`` links each factor of the axis on its own (through :class:`Space` parts), so the
    heads and the head dims of ``Reshape [B, S, H*D] -> [B, S, H, D]`` can be removed
    independently; ``plain`` is what the rule says otherwise (a :class:`Choice` of one factor, as
    for a channel shuffle). The analysis uses ``factored`` where the axis reaches attention heads
    (:data:`HEADS` spaces) and ``plain`` elsewhere, so models without attention keep the result
    they always had. ``plain`` may be given as a function, called once when first read.
    """

    __slots__ = ("node", "factored", "_plain")

    def __init__(self, node: str, factored: RuleResult, plain: "RuleResult | Callable[[], RuleResult]"):
        self.node, self.factored, self._plain = node, factored, plain

    @property
    def plain(self) -> RuleResult:
        if callable(self._plain):
            self._plain = self._plain()
        return self._plain


class RuleContext:
    """What a rule may read about its node: attributes, shapes, constants, shape values."""

    def __init__(self, index: GraphIndex, node: ir.Node, shape_values):
        self.index = index
        self.node = node
        self._shape_values = shape_values

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def opset(self) -> int:
        return self.index.opset(self.node.domain)

    def attr(self, name: str, default=None):
        return get_attr(self.node, name, default)

    def input(self, i: int) -> str:
        return input_name(self.node, i)

    def output(self, i: int) -> str:
        return output_name(self.node, i)

    @property
    def inputs(self) -> list[str]:
        """Input names (``""`` for an omitted optional input)."""
        return inputs(self.node)

    @property
    def outputs(self) -> list[str]:
        return outputs(self.node)

    def shape(self, tensor: str):
        return self.index.shape(tensor) if tensor else None

    def rank(self, tensor: str) -> int | None:
        s = self.shape(tensor)
        return None if s is None else len(s)

    def is_constant(self, tensor: str) -> bool:
        return bool(tensor) and self.index.is_constant(tensor)

    def const(self, tensor: str) -> np.ndarray | None:
        return self.index.array(tensor) if self.is_constant(tensor) else None

    def shape_value(self, tensor: str):
        """Entries of a 1-D int tensor with their provenance (see rules.shapevalue)."""
        return self._shape_values.value(tensor) if tensor else None

    def input_entries(self, i: int):
        """Entries of input ``i`` with provenance; constants read directly by this node name this use."""
        return self._shape_values.input_value(self.node, i)

    def used(self, tensor: str) -> bool:
        return bool(tensor) and (bool(self.index.uses(tensor)) or tensor in self.index.graph_outputs)


RuleFn = Callable[[RuleContext], RuleResult]


@dataclass(frozen=True)
class _Entry:
    fn: RuleFn
    since: int
    until: int | None
    #: whether the rule may say its node is a view (``RuleResult.view``): folding asks only those
    views: bool = False


class RuleRegistry:
    """Rules keyed by (domain, op type), each for an opset range. Analysis is handed one registry
    (:data:`DEFAULT_RULES` unless told otherwise); extend a :meth:`copy`, never the default."""

    def __init__(self, entries: dict | None = None):
        self._entries: dict[tuple[str, str], list[_Entry]] = {k: list(v) for k, v in (entries or {}).items()}

    def register(self, *op_types: str, domain: str = "", since: int = 1, until: int | None = None,
                 views: bool = False):
        """Decorator: register a rule for op types in ``domain`` for opsets ``since``..``until``
        (inclusive); ``views``: the rule may mark its node a view (it only moves its input's elements)."""

        def deco(fn: RuleFn) -> RuleFn:
            for op in op_types:
                self._entries.setdefault((domain, op), []).append(_Entry(fn, since, until, views))
            return fn

        return deco

    def entry(self, domain: str, op_type: str, opset: int) -> _Entry | None:
        domain = "" if domain == "ai.onnx" else domain
        for entry in self._entries.get((domain, op_type), []):
            if opset >= entry.since and (entry.until is None or opset <= entry.until):
                return entry
        return None

    def lookup(self, domain: str, op_type: str, opset: int) -> RuleFn | None:
        entry = self.entry(domain, op_type, opset)
        return entry.fn if entry is not None else None

    def may_be_view(self, domain: str, op_type: str, opset: int) -> bool:
        """Whether the rule of this op may mark a node a view (no rule: no)."""
        entry = self.entry(domain, op_type, opset)
        return entry is not None and entry.views

    def entries(self, domain: str, op_type: str) -> list[_Entry]:
        """The rules of one op type, one per opset range, in registration order."""
        return list(self._entries.get((domain, op_type), []))

    def ops(self) -> list[tuple[str, str]]:
        """(domain, op type) of every registered rule, sorted."""
        return sorted(self._entries)

    def copy(self) -> "RuleRegistry":
        return RuleRegistry(self._entries)


#: the registry every rule module of this package registers into
DEFAULT_RULES = RuleRegistry()
register = DEFAULT_RULES.register


def lookup(domain: str, op_type: str, opset: int) -> RuleFn | None:
    return DEFAULT_RULES.lookup(domain, op_type, opset)


def channel_maps(result: RuleResult, source: Space, target: str) -> list[tuple[int, np.ndarray | None]]:
    """Where the positions of ``source`` land in tensor ``target``: ``(axis, pairs)`` of every link
    (including the options of choices, and the plain form of factorings) between them; ``pairs``
    None is the identity."""
    plain = [result] + [f.plain for f in result.factorings]
    links = [lk for r in plain for lk in r.links]
    links += [lk for r in plain for c in r.choices for option in c.options for lk in option]
    out = []
    for link in links:
        if link.a == source and link.b.tensor == target:
            out.append((link.b.axis, link.pairs))
        elif link.b == source and link.a.tensor == target:
            out.append((link.a.axis, None if link.pairs is None else link.pairs[:, ::-1]))
    return out


def registered_ops() -> list[tuple[str, str]]:
    return DEFAULT_RULES.ops()


# --------------------------------------------------------------------------- helpers for rules
def identity_all(res: RuleResult, src: str, dst: str, rank: int, skip: tuple = ()) -> None:
    """Link every axis of ``src`` to the same axis of ``dst`` (elementwise-style)."""
    links = res.links
    for ax in range(rank):
        if ax not in skip:
            links.append(Link(Space(src, ax), Space(dst, ax)))


def pass_axes(res: RuleResult, src: str, dst: str, rank: int, *, reasons: dict | None = None,
              dropped=(), inserted=()) -> None:
    """Link the axes of ``src`` in order to the axes of ``dst``.

    Axes in ``reasons`` are not linked (they get the barrier reason); axes in ``dropped`` do not
    exist in ``dst``; ``dst`` axes in ``inserted`` have no ``src`` axis.
    """
    reasons = reasons or {}
    out = 0
    for ax in range(rank):
        while out in inserted:
            out += 1
        if ax in reasons:
            res.barrier(Space(src, ax), reasons[ax])
        if ax in dropped:
            continue
        if ax not in reasons:
            res.link(Space(src, ax), Space(dst, out))
        out += 1


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis
