"""Plans as values: JSON files that can be reviewed, edited and applied later.

A plan names, for every dependency group, its status and, for prunable groups, the kept
indices of every parameter slice (initializer and axis). It is tied to a fingerprint of the
model it was made for (:func:`model_fingerprint`: a SHA-256 of the graph structure and the
initializer values, independent of how the file stores them), and records whether BatchNorm was
folded first (``apply`` repeats exactly that preparation), the predicted parameters and MACs,
the options and any compensation data.

**Editing.** The kept indices are the source of truth. Dropping an index from one parameter
drops its whole slot from every parameter and tensor of the group (channels that must disappear
together); ``apply`` lists every such expansion. Indices outside a parameter's axis, unknown
initializers, and removals in blocked groups are errors (exit 3).
"""
from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from ..analysis.types import Analysis
from ..errors import DataError, OutputError
from ..rules.base import Space

log = logging.getLogger(__name__)

PLAN_FORMAT = "graphprune-plan"
PLAN_VERSION = 1


_NUMBER_LIST = re.compile(r"\[\s*(-?\d[\d.e+-]*(?:,\s*-?\d[\d.e+-]*)*)\s*\]")


def dump_json(data) -> str:
    """Indented JSON with lists of numbers kept on one line (kept indices stay readable)."""
    text = json.dumps(data, indent=1)
    return _NUMBER_LIST.sub(lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text) + "\n"


def model_fingerprint(model: onnx.ModelProto) -> str:
    """SHA-256 of the main graph's nodes, inputs, outputs and initializer values."""
    h = hashlib.sha256()
    graph = model.graph
    for op in sorted((o.domain, o.version) for o in model.opset_import):
        h.update(repr(op).encode())
    for vi in list(graph.input) + list(graph.output):
        h.update(b"io:" + vi.name.encode())
    for node in graph.node:
        h.update(b"node:" + node.op_type.encode() + b"|" + node.domain.encode())
        h.update(("|".join(node.input) + "->" + "|".join(node.output)).encode())
        for attr in sorted(node.attribute, key=lambda a: a.name):
            h.update(attr.SerializeToString(deterministic=True))
    for init in sorted(graph.initializer, key=lambda t: t.name):
        raw = _raw_little_endian(init)
        if raw is not None:  # the bytes to_array(...).tobytes() would give, without two copies
            dtype, data = raw
            h.update(f"init:{init.name}:{dtype.str}:{tuple(init.dims)}".encode())
            h.update(data)
            continue
        array = numpy_helper.to_array(init)
        h.update(f"init:{init.name}:{array.dtype.str}:{array.shape}".encode())
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


_PLAIN_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
                onnx.TensorProto.UINT8, onnx.TensorProto.INT16, onnx.TensorProto.UINT16, onnx.TensorProto.INT32,
                onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64}


def _raw_little_endian(init: onnx.TensorProto):
    """(numpy dtype, raw bytes) for plain numeric tensors stored as raw data, else None."""
    if init.data_type not in _PLAIN_TYPES or not init.HasField("raw_data") or sys.byteorder != "little":
        return None
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(init.data_type)), init.raw_data


@dataclass(frozen=True)
class PruningPlan:
    """The decision as data (see module docstring); ``groups`` are JSON-able dicts."""

    model_sha256: str
    model_name: str
    fold_batchnorm: bool
    groups: tuple
    options: dict = field(default_factory=dict)
    predicted: dict = field(default_factory=dict)
    compensation: dict | None = None
    notes: tuple = ()
    strict_initializer_inputs: bool = False

    # ------------------------------------------------------------------ views
    @property
    def removed_slots(self) -> int:
        return sum(len(g.get("removed_slots", ())) for g in self.groups)

    def kept(self) -> dict[Space, np.ndarray]:
        """Kept positions of every listed parameter space (validated against its size)."""
        out: dict[Space, np.ndarray] = {}
        for g in self.groups:
            for p in g.get("parameters", ()):
                space = Space(str(p["initializer"]), int(p["axis"]))
                kept = np.asarray(p["kept"], dtype=np.int64).reshape(-1)
                size = int(p["size"])
                if kept.size and (kept.min() < 0 or kept.max() >= size):
                    raise DataError(f"plan: group {g.get('id')}: kept index out of range for {space} (size {size})")
                if kept.size == 0:
                    raise DataError(f"plan: group {g.get('id')}: {space} keeps no index; a group keeps at least one "
                                    "slot")
                # an axis listed by several groups (heads and head dims) keeps what all of them keep
                out[space] = np.intersect1d(out[space], kept) if space in out else np.unique(kept)
        return out

    def sizes(self) -> dict[Space, int]:
        return {Space(str(p["initializer"]), int(p["axis"])): int(p["size"])
                for g in self.groups for p in g.get("parameters", ())}

    def to_dict(self) -> dict:
        """A deep copy as plain JSON data (editing it never changes the plan)."""
        return copy.deepcopy({"format": PLAN_FORMAT, "version": PLAN_VERSION,
                "model": {"name": self.model_name, "sha256": self.model_sha256},
                "prepare": {"fold_batchnorm": self.fold_batchnorm,
                            "strict_initializer_inputs": self.strict_initializer_inputs},
                "options": self.options, "predicted": self.predicted, "notes": list(self.notes),
                "compensation": self.compensation, "groups": list(self.groups)})

    @classmethod
    def from_dict(cls, data: dict, source: str = "plan") -> "PruningPlan":
        data = copy.deepcopy(data)
        if not isinstance(data, dict) or data.get("format") != PLAN_FORMAT:
            raise DataError(f"{source}: not a graphprune plan (no \"format\": \"{PLAN_FORMAT}\")")
        if data.get("version") != PLAN_VERSION:
            raise DataError(f"{source}: plan version {data.get('version')!r} is not supported (expected "
                            f"{PLAN_VERSION})")
        try:
            model = data["model"]
            prep = data.get("prepare", {})
            groups = tuple(data["groups"])
            for g in groups:
                for p in g.get("parameters", ()):
                    str(p["initializer"]), int(p["axis"]), int(p["size"]), list(p["kept"])
            return cls(str(model["sha256"]), str(model.get("name", "")), bool(prep.get("fold_batchnorm", True)),
                       groups, dict(data.get("options") or {}), dict(data.get("predicted") or {}),
                       data.get("compensation"), tuple(data.get("notes") or ()),
                       bool(prep.get("strict_initializer_inputs", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{source}: malformed plan ({type(exc).__name__}: {exc})") from exc

    def save(self, path: str | os.PathLike) -> Path:
        out = Path(path)
        text = dump_json(self.to_dict())
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise OutputError(f"{out}: cannot write the plan ({exc.strerror or exc})") from exc
        return out

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PruningPlan":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise DataError(f"{path}: no such plan file") from exc
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot read the plan ({exc})") from exc
        return cls.from_dict(data, str(path))

    def check_model(self, fingerprint: str, label: str) -> None:
        if fingerprint != self.model_sha256:
            raise DataError(f"the plan was made for a different model ({self.model_name or 'unnamed'}, sha256 "
                            f"{self.model_sha256[:12]}...; {label} is {fingerprint[:12]}...): make a new plan for "
                            "this model with graphprune plan")


# ---------------------------------------------------------------------- groups <-> kept positions
def group_entries(analysis: Analysis, removed: dict, skipped: dict, scores: dict | None = None) -> tuple:
    """The ``groups`` of a plan: status, reason, slots and kept indices of every parameter."""
    entries = []
    for group in analysis.groups:
        slots = np.asarray(removed.get(group.id, ()), dtype=np.int64)
        entry = {"id": group.id, "layer": group.layer, "first": str(group.representative), "slots": group.n_slots}
        if group.blocked:
            entry.update(status="blocked", reason="; ".join(sorted({b.reason for b in group.barriers})))
        elif not group.prunable:
            entry.update(status="single", reason="one slot: nothing to choose")
        else:
            status = "pruned" if slots.size else ("excluded" if group.id in skipped else "kept")
            entry.update(status=status, removed_slots=[int(s) for s in slots])
            if group.id in skipped:
                entry["reason"] = skipped[group.id]
            entry["parameters"] = [
                {"initializer": p.initializer, "axis": p.axis, "size": int(group.sizes[p.space]),
                 "kept": [int(i) for i in group.kept_positions(p.space, slots)]} for p in group.params]
        entries.append(entry)
    return tuple(entries)


def removed_from_kept(analysis: Analysis, kept: dict[Space, np.ndarray], sizes: dict | None = None,
                      strict: bool = True) -> tuple[dict, list[str]]:
    """Removed slots per group of ``analysis`` from kept positions of some of its spaces.

    A slot goes when any listed space drops one of its positions (union). Returns the removed
    slots and notes naming every listed space whose kept list had to grow or shrink. With
    ``strict``, listed spaces the analysis does not have, size mismatches and removals in
    blocked groups raise :class:`DataError`.
    """
    notes: list[str] = []
    by_group: dict[int, list[Space]] = {}
    shared = set()
    for space in kept:
        gids = analysis.space_groups.get(space) or ((analysis.space_group[space],) if space in analysis.space_group
                                                    else ())
        if not gids:
            if strict:
                raise DataError(f"plan names {space}, which is not a prunable axis of this model "
                                "(a plan for another model, or an edited name?)")
            continue
        if len(gids) > 1:
            shared.add(space)
        for gid in gids:
            by_group.setdefault(gid, []).append(space)
    removed: dict[int, np.ndarray] = {}
    groups = {g.id: g for g in analysis.groups}
    for gid, spaces in by_group.items():
        group = groups[gid]
        gone = np.zeros(max(group.n_slots, 1), dtype=bool)
        for space in spaces:
            size = group.sizes.get(space)
            if sizes is not None and space in sizes and sizes[space] != size:
                raise DataError(f"plan says {space} has {sizes[space]} positions; the model has {size}")
            mask = np.ones(size, dtype=bool)
            mask[kept[space][kept[space] < size]] = False
            if mask.any() and not group.slot_of:
                raise DataError(f"plan removes positions of {space}, but its group is not prunable")
            if space in shared:  # an axis of several groups: a slot goes when all its positions go
                slot_ids = group.slot_of[space]
                some = np.bincount(slot_ids[~mask], minlength=gone.size) > 0
                gone |= np.isin(np.arange(gone.size), slot_ids) & ~some
                continue
            gone[group.slot_of[space][mask]] = True
        slots = np.nonzero(gone)[0].astype(np.int64)
        if not slots.size:
            continue
        if not group.prunable:
            reason = "; ".join(sorted({b.reason for b in group.barriers})) or "a single slot"
            raise DataError(f"plan removes channels of {group.representative}, whose group is kept ({reason})")
        for space in spaces:
            if space in shared:
                continue  # several groups cut it: each keeps more than the plan's list
            now = group.kept_positions(space, slots)
            if not np.array_equal(now, kept[space]):
                notes.append(f"group {gid}: {space} keeps {now.size} of {group.sizes[space]} (its list said "
                             f"{kept[space].size}): positions of one slot go together")
        removed[gid] = slots
    return removed, notes


def masks(analysis: Analysis, removed: dict) -> dict:
    """initializer -> {axis: kept indices} for every initializer axis a decision shrinks."""
    from ..surgery.apply import kept_positions

    out: dict[str, dict[str, list[int]]] = {}
    for space, kept in sorted(kept_positions(analysis, removed).items()):
        if analysis.index.is_constant(space.tensor):
            out.setdefault(space.tensor, {})[str(space.axis)] = [int(i) for i in kept]
    return out


def write_masks(path, data: dict) -> Path:
    out = Path(path)
    try:
        out.write_text(dump_json(data), encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"{out}: cannot write the masks ({exc.strerror or exc})") from exc
    return out
