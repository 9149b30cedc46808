"""Connected components of a large graph given as edge arrays, in numpy (a union-find).

Slots are the connected components of the graph of channel positions (hundreds of thousands of
positions for a flatten into a dense layer), so this must not loop in Python per position.
Roots are hooked onto the smaller root across every edge at once, then paths are halved by
pointer jumping; both repeat until no edge joins two roots.
"""
from __future__ import annotations

import numpy as np


def component_labels(count: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """For ``count`` vertices and undirected edges ``rows[i] — cols[i]``: each vertex's component
    representative (the smallest vertex of its component)."""
    parent = np.arange(count, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    while True:
        a, b = parent[rows], parent[cols]
        joined = a != b
        if not joined.any():
            return parent
        low, high = np.minimum(a[joined], b[joined]), np.maximum(a[joined], b[joined])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The integers ``start, start + 1, ... start + size - 1`` of every (start, size), one after another."""
    return np.repeat(starts - (np.cumsum(sizes) - sizes), sizes) + np.arange(int(sizes.sum()), dtype=np.int64)
