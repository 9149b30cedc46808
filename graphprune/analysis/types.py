"""Value types produced by the analysis: barriers, parameter slices, groups."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rules.base import FixUp, Space


@dataclass(frozen=True)
class Barrier:
    """Why a space (and so its whole group) must be kept."""

    space: Space
    reason: str
    node: str | None = None

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class ParamSlice:
    """An initializer axis inside a group: the slices that go when positions go."""

    space: Space
    roles: frozenset
    tags: frozenset
    neutral: float = 0.0

    @property
    def initializer(self) -> str:
        return self.space.tensor

    @property
    def axis(self) -> int:
        return self.space.axis


@dataclass
class Group:
    """A dependency group: spaces whose positions are removed together, cut into slots."""

    id: int
    spaces: tuple[Space, ...]
    sizes: dict
    barriers: tuple[Barrier, ...]
    params: tuple[ParamSlice, ...]
    nodes: tuple[str, ...]
    n_slots: int = 0
    #: slot id of every position of every space (only when the group is not blocked)
    slot_of: dict = field(default_factory=dict)
    #: activation spaces read by a contraction whose other side is an activation too (no weight
    #: slice to zero there: the oracle masks these)
    contractions: tuple[Space, ...] = ()
    #: the layer a user recognises: ``node (op_type)`` of the node reading the representative parameter
    layer: str = ""
    #: for a family of factors of split axes: ``heads`` (whole attention heads, or key/value heads
    #: with their query heads), ``query`` (the query heads of each key/value head), ``dims`` (head
    #: dims); "" for an ordinary group
    kind: str = ""

    @property
    def blocked(self) -> bool:
        return bool(self.barriers)

    @property
    def prunable(self) -> bool:
        return not self.barriers and self.n_slots >= 2

    def kept_positions(self, space: Space, removed: np.ndarray) -> np.ndarray:
        """Sorted positions of ``space`` whose slot is not in ``removed``."""
        slots = self.slot_of[space]
        if removed.size == 0:
            return np.arange(slots.size, dtype=np.int64)
        return np.flatnonzero(~self.slot_mask(removed)[slots]).astype(np.int64, copy=False)

    def removed_positions(self, space: Space, removed) -> np.ndarray:
        """Sorted positions of ``space`` whose slot is in ``removed``."""
        return np.flatnonzero(self.slot_mask(removed)[self.slot_of[space]]).astype(np.int64, copy=False)

    def slot_mask(self, slots) -> np.ndarray:
        """True at every slot id in ``slots`` (ids outside the group are no slot of it)."""
        slots = np.asarray(slots, dtype=np.int64).ravel()
        mask = np.zeros(self.n_slots, dtype=bool)
        mask[slots[(slots >= 0) & (slots < self.n_slots)]] = True
        return mask

    def spaces_of_slots(self) -> dict:
        """For each space, the sorted slot ids it touches (computed once)."""
        cached = self.__dict__.get("_spaces_of_slots")
        if cached is None:
            cached = {space: np.flatnonzero(np.bincount(slots, minlength=self.n_slots))
                      for space, slots in self.slot_of.items()}
            self.__dict__["_spaces_of_slots"] = cached
        return cached

    @property
    def representative(self) -> Space:
        """A readable name for the group: its first producer weight, else its first parameter space."""
        for p in self.params:
            if "producer" in p.roles and "weight" in p.tags:
                return p.space
        return self.params[0].space if self.params else self.spaces[0]

    @property
    def title(self) -> str:
        """``layer: parameter[axis]`` (or the parameter alone when no node reads it)."""
        return f"{self.layer}: {self.representative}" if self.layer else str(self.representative)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "layer": self.layer,
            "slots": self.n_slots,
            "prunable": self.prunable,
            "barriers": sorted({b.reason for b in self.barriers}),
            "kind": self.kind,
            "spaces": [{"tensor": s.tensor, "axis": s.axis, "size": self.sizes.get(s),
                        **({"part": {"stride": s.part[0], "size": s.part[1]}} if s.part else {})}
                       for s in self.spaces],
            "parameters": [{"initializer": p.initializer, "axis": p.axis, "roles": sorted(p.roles),
                            "tags": sorted(t for t in p.tags if t)} for p in self.params],
            "nodes": list(self.nodes),
        }


@dataclass
class Analysis:
    """Everything analysis found: groups, fix-ups, and the index it read."""

    index: object
    groups: list[Group]
    fixups: list[FixUp]
    #: nodes whose op has no rule (name -> reason), for reporting
    unknown_nodes: dict
    #: space -> id of its (first) group
    space_group: dict = field(default_factory=dict)
    #: space -> ids of every group it is in (several when its axis is split into heads and dims)
    space_groups: dict = field(default_factory=dict)
    #: attention blocks: one :class:`AttentionBlock` per group of whole heads
    attention: list = field(default_factory=list)

    @property
    def prunable_groups(self) -> list[Group]:
        return [g for g in self.groups if g.prunable]

    @property
    def blocked_groups(self) -> list[Group]:
        return [g for g in self.groups if g.blocked]


@dataclass(frozen=True)
class AttentionBlock:
    """What ``inspect`` says about one attention block: its head group and head-dim groups."""

    layer: str
    heads_group: int
    #: query heads (the size of the heads axes), key/value heads (None without grouped queries)
    query_heads: int
    kv_heads: int | None
    head_dim: int | None
    #: slots of the head group (heads, or key/value heads with their query heads)
    slots: int
    dims_groups: tuple = ()
    blocked: str = ""

    def to_dict(self) -> dict:
        return {"layer": self.layer, "heads_group": self.heads_group, "query_heads": self.query_heads,
                "kv_heads": self.kv_heads, "head_dim": self.head_dim, "slots": self.slots,
                "dims_groups": list(self.dims_groups), "blocked": self.blocked}
