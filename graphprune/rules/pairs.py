"""Position maps of links: ``pairs[i] = (position in a, position in b)`` as int64 arrays."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

#: maps of at most this many positions are made once and shared (read-only): the shape vectors of a
#: transformer export are concatenated and sliced at the same offsets layer after layer
SHARED_PAIRS = 256


def block_pairs(count: int, width: int) -> np.ndarray:
    """Position c of a space ↔ positions c*width .. c*width+width-1 of another."""
    a = np.repeat(np.arange(count, dtype=np.int64), width)
    b = np.arange(count * width, dtype=np.int64)
    return np.stack([a, b], axis=1)


def offset_pairs(count: int, offset: int) -> np.ndarray:
    """``[c, c + offset]`` for every c < count (small maps are shared: read-only)."""
    if count <= SHARED_PAIRS:
        return _shared_offset_pairs(int(count), int(offset))
    return _offset_pairs(count, offset)


def _offset_pairs(count: int, offset: int) -> np.ndarray:
    return np.arange(count, dtype=np.int64)[:, None] + np.array([0, offset], dtype=np.int64)


@lru_cache(maxsize=1024)
def _shared_offset_pairs(count: int, offset: int) -> np.ndarray:
    pairs = _offset_pairs(count, offset)
    pairs.setflags(write=False)
    return pairs
