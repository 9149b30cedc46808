"""Streaming per-channel statistics of activations (bounded memory).

For every calibrated space ``(tensor, axis)`` only running sums are kept, one entry per position
of the axis: the number of values seen, their sum, sum of squares and sum of absolute values
(all float64). Optionally the Gram matrix ``Σ x xᵀ`` over positions (for the least-squares
re-fit), which is ``size²`` numbers and is only kept for spaces up to :data:`GRAM_LIMIT`.
Activations themselves are never kept: each batch is reduced as soon as it is produced.

Because only sums are kept, statistics of disjoint sets of samples combine exactly:
:meth:`CalibrationStats.merge` adds counts, sums and Gram matrices (never averages of averages),
so shards of the data calibrated by different workers reduce to the statistics of all of them.
Merging the same shards in the same order gives the same bits whoever computed them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rules.base import Space

#: largest axis for which a Gram matrix (size x size float64) is accumulated
GRAM_LIMIT = 2048
#: ridge of least-squares re-fits from the covariance, relative to the mean variance of the positions
#: they read: the ``refit`` repair (:mod:`graphprune.compensation.means`) and the ``reconstruction``
#: importance, whose greedy therefore ends on the repair's re-fit
REFIT_RIDGE = 1e-4


@dataclass
class SpaceStats:
    """Running sums for one space; ``count`` values were seen per position."""

    space: Space
    size: int
    count: int = 0
    total: np.ndarray = None
    squares: np.ndarray = None
    absolute: np.ndarray = None
    gram: np.ndarray | None = None
    #: shape of the tensor in the last batch (for evaluating consumers on constant inputs)
    shape: tuple = ()
    with_gram: bool = False

    def __post_init__(self):
        for name in ("total", "squares", "absolute"):
            if getattr(self, name) is None:
                setattr(self, name, np.zeros(self.size, dtype=np.float64))
        if self.with_gram and self.gram is None:
            self.gram = np.zeros((self.size, self.size), dtype=np.float64)

    def update(self, array: np.ndarray, valid: np.ndarray | None = None) -> None:
        """Add one batch: ``array`` is the whole tensor; values are grouped by ``space.axis``.

        ``valid`` (boolean, broadcastable to ``array``, size 1 along ``space.axis``) keeps only the
        elements where it is True (real tokens of a padded batch, see :mod:`.tokens`).
        """
        array = np.asarray(array)
        axis = self.space.axis
        if array.ndim <= axis or array.shape[axis] != self.size:
            raise ValueError(f"{self.space}: expected {self.size} positions, got shape {array.shape}")
        rows = np.moveaxis(array, axis, 0).reshape(self.size, -1)
        if valid is not None:
            rest = array.shape[:axis] + array.shape[axis + 1:]
            keep = np.broadcast_to(np.moveaxis(np.asarray(valid, dtype=bool), axis, 0)[0], rest).reshape(-1)
            rows = rows[:, keep]
        rows = rows.astype(np.float64)
        self.count += rows.shape[1]
        self.total += rows.sum(axis=1)
        self.squares += np.einsum("ij,ij->i", rows, rows)
        self.absolute += np.abs(rows).sum(axis=1)
        if self.gram is not None:
            self.gram += rows @ rows.T
        self.shape = tuple(int(d) for d in array.shape)

    def merge(self, other: "SpaceStats") -> None:
        """Add the sums of ``other`` (the same space, other samples): exact, order of samples aside."""
        if other.space != self.space or other.size != self.size:
            raise ValueError(f"cannot merge statistics of {other.space} ({other.size} positions) into "
                             f"{self.space} ({self.size} positions)")
        if (self.gram is None) != (other.gram is None):
            raise ValueError(f"{self.space}: cannot merge statistics with and without a Gram matrix")
        self.count += other.count
        self.total = self.total + other.total
        self.squares = self.squares + other.squares
        self.absolute = self.absolute + other.absolute
        if self.gram is not None:
            self.gram = self.gram + other.gram
        if other.count:
            self.shape = other.shape

    @property
    def mean(self) -> np.ndarray:
        return self.total / max(self.count, 1)

    @property
    def variance(self) -> np.ndarray:
        """Population variance per position (clipped at 0 against rounding)."""
        mean = self.mean
        return np.maximum(self.squares / max(self.count, 1) - mean * mean, 0.0)

    @property
    def second_moment(self) -> np.ndarray:
        """E[x²] per position."""
        return self.squares / max(self.count, 1)

    @property
    def mean_abs(self) -> np.ndarray:
        return self.absolute / max(self.count, 1)

    @property
    def covariance(self) -> np.ndarray | None:
        """Population covariance between positions (needs the Gram matrix)."""
        if self.gram is None:
            return None
        mean = self.mean
        return self.gram / max(self.count, 1) - np.outer(mean, mean)


@dataclass
class CalibrationStats:
    """Statistics of every calibrated space, and how many samples (feeds) produced them."""

    spaces: dict = field(default_factory=dict)
    samples: int = 0
    source: str = ""
    #: token inputs (an attention mask): sequences (rows of the feeds) and real tokens among them
    sequences: int = 0
    tokens: int = 0

    def __contains__(self, space: Space) -> bool:
        return space in self.spaces

    def get(self, space: Space) -> SpaceStats | None:
        return self.spaces.get(space)

    def add_space(self, space: Space, size: int, gram: bool = False) -> SpaceStats:
        stats = self.spaces.get(space)
        if stats is None:
            stats = SpaceStats(space, int(size), with_gram=gram and size <= GRAM_LIMIT)
            self.spaces[space] = stats
        return stats

    def merge(self, other: "CalibrationStats") -> "CalibrationStats":
        """Add ``other``'s samples (statistics of the same spaces over other samples); returns self."""
        if set(other.spaces) != set(self.spaces):
            raise ValueError("cannot merge calibration statistics of different spaces")
        for space, stats in self.spaces.items():
            stats.merge(other.spaces[space])
        self.samples += other.samples
        self.sequences += other.sequences
        self.tokens += other.tokens
        return self

    def to_dict(self) -> dict:
        tokens = {"sequences": self.sequences, "tokens": self.tokens} if self.sequences else {}
        return {"samples": self.samples, "source": self.source, "spaces": len(self.spaces), **tokens}

    def describe(self) -> str:
        """``4 samples`` or, for token inputs, ``2 samples (32 sequences, 457 real tokens)``."""
        text = f"{self.samples} samples"
        return text + (f" ({self.sequences} sequences, {self.tokens} real tokens)" if self.sequences else "")
