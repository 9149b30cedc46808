"""Per-node overrides from a config file (``--config overrides.json|.toml``).

    # overrides.toml                          // overrides.json
    [[override]]                              {"override": [
    node = "/stem/*"                            {"node": "/stem/*", "ratio": 0.1},
    ratio = 0.1                                 {"node": "*head*", "exclude": true}]}
    [[override]]
    node = "*head*"
    exclude = true

Each entry names a glob over node names (``node``) and any of ``ratio`` (this group's own
fraction of slots removed, also in global and target modes), ``max_ratio``, ``min_channels``
(slots kept at least), ``round_to`` and ``exclude``. A group takes the first entry matching one of
its nodes.
"""
from __future__ import annotations

import fnmatch
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, UsageError

KEYS = ("node", "ratio", "max_ratio", "min_channels", "round_to", "exclude")


@dataclass(frozen=True)
class Override:
    node: str
    ratio: float | None = None
    max_ratio: float | None = None
    min_channels: int | None = None
    round_to: int | None = None
    exclude: bool = False

    def matches(self, nodes) -> bool:
        return any(fnmatch.fnmatchcase(n, self.node) for n in nodes)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, False)}


def check_fraction(name: str, value, *, upper_open: bool = True) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{name} must be a number, got {value!r}") from exc
    ok = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not ok or value != value:
        raise UsageError(f"{name} must be in [0, {'1)' if upper_open else '1]'}, got {value:g}")
    return value


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < 1:
        raise UsageError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def parse_override(entry, where: str) -> Override:
    if not isinstance(entry, dict) or not isinstance(entry.get("node"), str) or not entry["node"]:
        raise UsageError(f"{where}: each override needs a \"node\" glob")
    unknown = sorted(set(entry) - set(KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {unknown}; known: {', '.join(KEYS)}")
    return Override(
        entry["node"],
        ratio=None if entry.get("ratio") is None else check_fraction(f"{where} ratio", entry["ratio"]),
        max_ratio=None if entry.get("max_ratio") is None else check_fraction(f"{where} max_ratio", entry["max_ratio"],
                                                                             upper_open=False),
        min_channels=None if entry.get("min_channels") is None else check_positive_int(
            f"{where} min_channels", entry["min_channels"]),
        round_to=None if entry.get("round_to") is None else check_positive_int(f"{where} round_to", entry["round_to"]),
        exclude=bool(entry.get("exclude", False)))


def load_overrides(path) -> tuple[Override, ...]:
    """Overrides from a ``.json`` or ``.toml`` file (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such config file")
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read config ({exc})") from exc
    entries = data.get("override", data.get("overrides")) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UsageError(f"{path}: expected a list under \"override\" (see graphprune plan --help)")
    return tuple(parse_override(e, f"{path.name} override {i}") for i, e in enumerate(entries))


def first_match(overrides, nodes) -> Override | None:
    for o in overrides:
        if o.matches(nodes):
            return o
    return None
