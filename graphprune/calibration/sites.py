"""Where a group's channels are *read*: consumer sites, found from parameter roles alone.

A **consumer site** is one node that contracts an activation of a group with a consumer
parameter slice of the same group (a Conv weight's input axis, a Gemm/MatMul weight's
contracted axis...). Rules already said which initializer axes are consumer slices; a site is
the node reading such an initializer together with its non-constant input whose axis lies in
the same group. Nothing here knows op types, so a new op only needs its rule.

Data-driven importance measures the site's activation; compensation changes what the site's
node adds to its output. A **contraction site** is a node contracting two activations of one
group with each other (queries against keys): no weight reads those channels, so importance
measures both operands there, and nothing can be compensated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis.types import Group
from ..graph.nodes import inputs
from ..rules.base import CONSUMER, Space


@dataclass(frozen=True)
class ConsumerSite:
    """``node`` reads ``activation`` (an activation space of the group) against ``weight``."""

    node: str
    weight: Space
    activation: Space
    #: the node's input index of the activation
    input_index: int


def consumer_sites(group: Group, index) -> list[ConsumerSite]:
    """Every consumer site of ``group`` (deterministic order: parameter order, then node order)."""
    members = group.slot_of if group.slot_of else {s: None for s in group.spaces}
    out: list[ConsumerSite] = []
    seen = set()
    for param in group.params:
        if CONSUMER not in param.roles:
            continue
        for use in index.uses(param.initializer):
            if use.index < 0:
                continue
            node = index.nodes[use.node]
            for i, name in enumerate(inputs(node)):
                if not name or index.is_constant(name):
                    continue
                for space in _spaces_of(name, members):
                    key = (node.name, param.space, space)
                    if key not in seen:
                        seen.add(key)
                        out.append(ConsumerSite(node.name, param.space, space, i))
    return out


@dataclass(frozen=True)
class ContractionSite:
    """``node`` contracts two activations of the group with each other: ``a`` (one of the group's
    ``contractions``) against ``b`` (e.g. queries against keys: no weight reads these channels)."""

    node: str
    a: Space
    b: Space


def contraction_sites(group: Group, index) -> list[ContractionSite]:
    """Every node contracting two activation spaces of ``group`` (deterministic order)."""
    out: list[ContractionSite] = []
    for space in group.contractions:
        for use in index.uses(space.tensor):
            if use.index < 0:
                continue
            node = index.nodes[use.node]
            for name in inputs(node):
                if not name or name == space.tensor or index.is_constant(name):
                    continue
                out.extend(ContractionSite(node.name, space, other) for other in _spaces_of(name, group.slot_of))
    return list(dict.fromkeys(out))


def _spaces_of(tensor: str, members) -> list[Space]:
    return [s for s in members if s.tensor == tensor]


def whole(space: Space) -> Space:
    """The whole axis of ``space`` (a space may be one part of an axis: the heads or the head dims of
    a ``heads * head_dim`` axis); calibration statistics are kept per position of the whole axis."""
    return Space(space.tensor, space.axis) if getattr(space, "part", ()) else space


def whole_slots(group: Group, space: Space, size: int) -> np.ndarray:
    """The slot of each of the ``size`` positions of ``space``'s whole axis (``space`` is the whole
    axis, or the part ``(stride, parts)`` whose position ``(p // stride) % parts`` holds position p)."""
    slots = group.slot_of[space]
    part = getattr(space, "part", ())
    if not part:
        return slots
    stride, parts = part
    return slots[(np.arange(size, dtype=np.int64) // stride) % parts]


def axis_slots(group: Group, space: Space, size: int) -> np.ndarray | None:
    """The slot of each of the ``size`` positions of the whole axis ``space`` in ``group`` (read from
    the axis itself or from any of its parts in the group), or None when the group has no space on it."""
    for member in group.slot_of:
        if whole(member) == space:
            return whole_slots(group, member, size)
    return None


def whole_size(analysis, space: Space) -> int | None:
    """Positions of the whole axis ``space`` (from its group, else from the inferred shape)."""
    gid = analysis.space_group.get(space)
    size = analysis.groups[gid].sizes.get(space) if gid is not None else None
    if isinstance(size, int):
        return size
    shape = analysis.index.shape(space.tensor)
    if shape is not None and space.axis < len(shape) and isinstance(shape[space.axis], int):
        return shape[space.axis]
    return None


def activation_spaces(groups, index) -> list[Space]:
    """The whole activation axes read by the consumer and contraction sites of ``groups`` (sorted, unique)."""
    out = set()
    for group in groups:
        for site in consumer_sites(group, index):
            out.add(whole(site.activation))
        for pair in contraction_sites(group, index):
            out.update((whole(pair.a), whole(pair.b)))
    return sorted(out)
