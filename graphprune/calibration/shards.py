"""Calibration statistics computed by an executor's workers, one shard of samples per task.

The calibration samples are cut into shards of :data:`~.collect.SHARD_SAMPLES` (by position in
the data, whatever the number of workers). Every worker receives once the model, the spaces to
calibrate and the data (a path, which each worker reads itself: on a cluster it must be readable
on every node; or the calibration samples themselves when they were given as arrays); a task is
one shard's sample positions, and its result the shard's :class:`~.stats.CalibrationStats`.
The shards' statistics are merged in shard order: exact sums, added in the order
:func:`~.collect.calibrate` adds them in one process.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import onnx

from ..execution.executor import Context, Executor
from ..rules.base import Space
from .collect import SHARD_SAMPLES, Collector, empty_stats, finished
from .stats import CalibrationStats
from .tokens import TokenMask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardPayload:
    """What every calibrating worker receives once."""

    model: bytes
    spaces: tuple
    sizes: dict
    gram: tuple
    #: a data path (read by each worker) or the calibration samples (a tuple of feeds)
    data: object
    image_options: dict = field(default_factory=dict)
    source: str = ""
    #: where padded tokens are (see :mod:`.tokens`; None: every element counts)
    mask: TokenMask | None = None


class ShardState:
    """A worker's calibration session and its access to the data."""

    def __init__(self, payload: ShardPayload):
        self.payload = payload
        self.model = onnx.load_from_string(payload.model)
        self.collector = Collector(self.model, payload.spaces, sizes=payload.sizes, gram=payload.gram, threads=1,
                                   mask=payload.mask)

    def stats(self, positions: Sequence[int]) -> CalibrationStats:
        from ..validation.data_files import iter_inputs

        data = self.payload.data
        if isinstance(data, tuple):
            feeds = (data[i] for i in positions)
        else:
            feeds = iter_inputs(data, self.model, select=positions, **self.payload.image_options)
        return self.collector.shard(feeds, first=min(positions), source=self.payload.source)


def shard_state(payload: ShardPayload) -> ShardState:
    return ShardState(payload)


def shard_stats(state: ShardState, positions: tuple) -> CalibrationStats:
    """Task function: the statistics of the samples at ``positions`` of the data."""
    return state.stats(positions)


def shards(positions: Sequence[int]) -> list[tuple]:
    """``positions`` cut into consecutive shards of :data:`SHARD_SAMPLES`."""
    positions = [int(p) for p in positions]
    return [tuple(positions[i:i + SHARD_SAMPLES]) for i in range(0, len(positions), SHARD_SAMPLES)]


def worth_sharding(executor: Executor | None, samples: int | None) -> bool:
    """True when ``executor`` runs tasks in parallel and the samples make two shards or more."""
    return executor is not None and samples is not None and samples > SHARD_SAMPLES and executor.width > 1


def calibrate_sharded(model: onnx.ModelProto, spaces: Iterable[Space], data, positions: Sequence[int],
                      executor: Executor, *, sizes: Mapping, gram: Iterable[Space] = (),
                      image_options: Mapping | None = None, progress: bool = False, source: str = "",
                      mask: TokenMask | None = None) -> CalibrationStats:
    """The statistics of the samples at ``positions`` of ``data`` (a path, arrays or a list of
    feeds), one shard per task of ``executor``; equal to :func:`~.collect.calibrate` over them."""
    from ..validation.data_files import iter_inputs

    spaces = tuple(sorted(set(spaces)))
    options = dict(image_options or {})
    if not isinstance(data, (str, os.PathLike)):
        # in-memory data: the workers receive the calibration samples only
        data = tuple(iter_inputs(data, model, select=positions, **options))
        positions = range(len(data))
    else:
        data = str(data)
    payload = ShardPayload(model.SerializeToString(), spaces, {s: int(sizes[s]) for s in spaces},
                           tuple(sorted(set(gram))), data, options, source, mask)
    tasks = shards(positions)
    log.info("calibrating %d samples in %d shards on %d workers", len(positions), len(tasks), executor.width)
    parts = executor.map(shard_stats, tasks, context=Context(shard_state, payload, label="calibration shards"),
                         progress="calibrating" if progress else None)
    stats = empty_stats(spaces, payload.sizes, payload.gram, source)
    for part in parts:
        stats.merge(part)
    return finished(stats, source)
