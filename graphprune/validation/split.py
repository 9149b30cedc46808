"""One data source split into calibration samples and held-out samples, deterministically.

``--calib DATA`` serves two purposes that must not see the same samples: calibration (scoring,
repair statistics, the budget search's own evaluations) and the final drift check. Of its ``n``
samples, ``round(eval_split · n)`` (at least one, at most ``n − 1``) are held out, chosen by a
permutation seeded with ``seed``; the others, in data order, are the calibration samples (the
first ``calib_limit`` of them when a limit is given). Changing ``calib_limit`` never changes
which samples are held out.

* Calibration samples are streamed (:meth:`DataSplit.calibration`): statistics keep one sample's
  activations at a time, whatever ``n``.
* Held-out samples are kept in memory for the checks, up to :data:`HELD_OUT_BYTES` of inputs;
  the search keeps its first calibration samples, up to :data:`SEARCH_BYTES`. Past a cap the
  rest are not used, and :attr:`DataSplit.notes` says so.
* With ``--data`` as well, ``--data`` is the held-out set (streamed by the checks) and every
  ``--calib`` sample calibrates. With ``eval_split == 0`` nothing is held out: the checks run on
  calibration samples, and the label says so.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from functools import cached_property
from itertools import islice

import numpy as np

from ..errors import UsageError
from ..vocabulary import DEFAULT_EVAL_SPLIT
from .data_files import count_inputs, iter_inputs

log = logging.getLogger(__name__)

#: held-out inputs kept in memory for the final check (bytes of input arrays)
HELD_OUT_BYTES = 256 * 2**20
#: calibration inputs the budget search keeps in memory for its evaluations (bytes of input arrays)
SEARCH_BYTES = 128 * 2**20
#: calibration samples the budget search's repairs are fitted on, after the samples it measures on
REPAIR_FEEDS = 64


def data_label(spec) -> str:
    return str(spec) if isinstance(spec, (str, os.PathLike)) else "given arrays"


def feed_bytes(feed: Mapping) -> int:
    return int(sum(np.asarray(v).nbytes for v in feed.values()))


def held_out_indices(total: int, eval_split: float, seed: int) -> frozenset[int]:
    """The seeded choice of held-out sample indices among ``total`` samples."""
    if eval_split <= 0:
        return frozenset()
    if total < 2:
        raise UsageError(f"--eval-split {eval_split:g}: the calibration data has {total} sample(s); at least 2 "
                         "are needed to hold one out (give more data, --data PATH, or --eval-split 0)")
    count = min(max(int(round(eval_split * total)), 1), total - 1)
    order = np.random.default_rng(seed).permutation(total)
    return frozenset(int(i) for i in order[:count])


def _capped(stream, max_bytes: int) -> tuple[list, int]:
    """Feeds from ``stream`` while their bytes stay within ``max_bytes`` (the first one always), and how
    many were left out."""
    kept, used, left = [], 0, 0
    for feed in stream:
        size = feed_bytes(feed)
        if kept and used + size > max_bytes:
            left += 1
            continue
        kept.append(feed)
        used += size
    return kept, left


class DataSplit:
    """Calibration and held-out samples of ``calib`` (and of ``data``, when given, the held-out set)."""

    def __init__(self, calib, model, *, eval_split: float | None, seed: int = 0, calib_limit: int | None = None,
                 image_options: Mapping | None = None, data=None, stream=None):
        """``stream``: a function giving the calibration feeds anew (text data through a tokenizer);
        by default they are read from ``calib`` (:func:`iter_inputs`). ``eval_split`` None: the default
        fraction, or nothing held out when ``calib`` has a single sample (a note says so)."""
        self.calib, self.model, self.data = calib, model, data
        self.seed, self.calib_limit = int(seed), calib_limit
        self.image_options = dict(image_options or {})
        self._feeds = stream or (lambda: iter_inputs(self.calib, self.model, **self.image_options))
        if calib is None:
            self.total = 0
        else:
            self.total = sum(1 for _ in stream()) if stream else count_inputs(calib, model, **self.image_options)
        self.notes: list[str] = []
        self.eval_split = float(eval_split) if eval_split is not None else self._default_split()
        split = 0.0 if data is not None or calib is None else self.eval_split
        self.held = held_out_indices(self.total, split, self.seed) if calib is not None else frozenset()

    def _default_split(self) -> float:
        if self.calib is not None and self.data is None and self.total == 1:
            self._note(f"{data_label(self.calib)} has a single sample: nothing held out, the checks run on it "
                       "(give more samples or --data PATH for a held-out check)")
            return 0.0
        return DEFAULT_EVAL_SPLIT

    def _stream(self) -> Iterator[tuple[int, dict]]:
        return enumerate(self._feeds())

    def calibration(self) -> Iterator[dict]:
        """The calibration samples, in data order, streamed (the first ``calib_limit``)."""
        stream = (feed for i, feed in self._stream() if i not in self.held)
        return islice(stream, self.calib_limit)

    def calibration_indices(self) -> list[int]:
        """Where the calibration samples are in ``calib`` (what :meth:`calibration` streams, in order)."""
        indices = [i for i in range(self.total) if i not in self.held]
        return indices if self.calib_limit is None else indices[:self.calib_limit]

    @property
    def calibration_count(self) -> int:
        count = self.total - len(self.held)
        return count if self.calib_limit is None else min(count, self.calib_limit)

    def search_feeds(self, count: int) -> list[dict]:
        """The first ``count`` calibration samples, in memory (within :data:`SEARCH_BYTES`)."""
        feeds, left = _capped(islice(self.calibration(), count), SEARCH_BYTES)
        if left:
            self._note(f"the search measures on {len(feeds)} calibration samples ({SEARCH_BYTES >> 20} MiB of inputs)")
        return feeds

    def repair_feeds(self, skip: int) -> list[dict]:
        """Calibration samples for the search's repairs, fitted apart from the ``skip`` samples it
        measures on (:data:`REPAIR_FEEDS` of them at most, within :data:`SEARCH_BYTES`); when no other
        sample is left, the measured ones, with a note (their drift is then optimistic)."""
        feeds, left = _capped(islice(self.calibration(), skip, skip + REPAIR_FEEDS), SEARCH_BYTES)
        if feeds:
            return feeds
        self._note(f"the search's repairs are fitted on the {skip} calibration samples it measures on (no other "
                   "calibration sample is left): its drift estimates are optimistic, the held-out check decides")
        return self.search_feeds(skip)

    @cached_property
    def held_out(self) -> list[dict] | None:
        """The held-out samples in memory (None when ``data`` is the held-out set: it is streamed)."""
        if self.data is not None:
            return None
        if not self.held:
            stream = self.calibration()
        else:
            stream = (feed for i, feed in self._stream() if i in self.held)
        feeds, left = _capped(stream, HELD_OUT_BYTES)
        if left:
            self._note(f"the final check uses {len(feeds)} of {len(feeds) + left} held-out samples "
                       f"({HELD_OUT_BYTES >> 20} MiB of inputs)")
        return feeds

    def check_data(self):
        """What the checks read: ``data`` as given, or the held-out samples."""
        return self.data if self.data is not None else self.held_out

    @property
    def label(self) -> str:
        """Where the checked drift comes from, in words."""
        if self.data is not None:
            return f"samples of {data_label(self.data)}"
        if not self.held:
            why = "a single sample" if self.total == 1 else "--eval-split 0"
            return f"calibration samples of {data_label(self.calib)} ({why}: none held out)"
        return (f"held-out samples of {data_label(self.calib)} ({len(self.held)} of {self.total} held out with "
                f"--eval-split {self.eval_split:g}, seed {self.seed}; never used for calibration)")

    def _note(self, text: str) -> None:
        if text not in self.notes:
            log.info("%s", text)
            self.notes.append(text)

    def to_dict(self) -> dict:
        return {"calibration": data_label(self.calib) if self.calib is not None else None,
                "samples": self.total, "held_out": len(self.held), "calibration_samples": self.calibration_count,
                "eval_split": self.eval_split, "seed": self.seed,
                "check": data_label(self.data) if self.data is not None else "held-out", "notes": list(self.notes)}
