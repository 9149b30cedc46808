"""Run calibration feeds through onnxruntime with intermediate tensors exposed as outputs.

Feeds are consumed one at a time (a generator is never materialized) and every exposed tensor
is reduced into :class:`~graphprune.calibration.stats.SpaceStats` right away, so memory stays
at one feed's activations whatever the number of samples.

The samples are summed in shards of :data:`SHARD_SAMPLES` (each shard's sums start from zero and
are added to the total in order), whether one process streams them all (:func:`calibrate`) or
workers calibrate the shards (:mod:`.shards`): the same additions in the same order, so the
statistics do not depend on how many workers computed them.
"""
from __future__ import annotations

import logging
import hashlib
from collections.abc import Iterable, Mapping
from itertools import islice

import numpy as np
import onnx

from ..errors import DataError, UsageError
from ..progress import progress as progress_iter
from ..rules.base import Space
from ..validation.runner import make_session, run_session
from .stats import CalibrationStats
from .tokens import TokenMask

log = logging.getLogger(__name__)

from ..vocabulary import DEFAULT_CALIB_SAMPLES, DEFAULT_MAX_LENGTH  # noqa: F401 - re-exported

#: samples summed into one partial sum before it is added to the total (the unit of distribution)
SHARD_SAMPLES = 16


def expose(model: onnx.ModelProto, tensors: Iterable[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph outputs also include ``tensors`` (type left to the runtime)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    declared = {o.name for o in probe.graph.output}
    for name in sorted(set(tensors) - declared):
        probe.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    return probe


def calibration_feeds(spec, model, *, limit: int | None = DEFAULT_CALIB_SAMPLES, image_options: Mapping | None = None,
                      tokenizer=None, max_length: int = DEFAULT_MAX_LENGTH, text_batch: int | None = None):
    """A stream of feeds from ``spec`` (``.npz``/``.npy``/image folder, arrays, list of dicts).

    With ``tokenizer`` (a ``tokenizer.json`` path), ``spec`` is a text file of one sentence per
    line, ``limit`` counts sentences and ``text_batch`` sets the sentences per feed (see
    :func:`graphprune.calibration.text.text_feeds`).
    """
    from ..validation.data_files import iter_inputs

    if spec is None:
        raise UsageError("a data-driven criterion needs calibration data: give it with --calib PATH "
                         "(API: calib=...)")
    if tokenizer is not None:
        from ..validation.feeds import model_inputs
        from ..io.read import as_model
        from .text import text_feeds

        specs = model_inputs(as_model(model))
        return iter_inputs(text_feeds(spec, tokenizer, specs, limit=limit, max_length=max_length,
                                      batch_size=text_batch), model)
    return iter_inputs(spec, model, limit=limit, **dict(image_options or {}))


def fingerprint(feeds: Iterable[dict]) -> tuple[str, int]:
    """SHA-256 of a stream of feeds (input names, dtypes, shapes and values, in order) and its length."""
    digest, count = hashlib.sha256(), 0
    for feed in feeds:
        for name in sorted(feed):
            array = np.ascontiguousarray(feed[name])
            digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
        count += 1
    return digest.hexdigest(), count


def empty_stats(spaces: Iterable[Space], sizes: Mapping, gram: Iterable[Space] = (),
                source: str = "") -> CalibrationStats:
    """Statistics of no sample yet (zeros for every space; Gram matrices for the spaces in ``gram``)."""
    stats, gram = CalibrationStats(source=source), set(gram)
    for space in sorted(set(spaces)):
        stats.add_space(space, sizes[space], gram=space in gram)
    return stats


class Collector:
    """One onnxruntime session over ``model`` with the calibrated tensors exposed, and what to sum
    (``mask``, see :mod:`.tokens`: padded tokens left out)."""

    def __init__(self, model: onnx.ModelProto, spaces: Iterable[Space], *, sizes: Mapping,
                 gram: Iterable[Space] = (), threads: int | None = None, mask: TokenMask | None = None):
        self.spaces = sorted(set(spaces))
        self.sizes = {s: int(sizes[s]) for s in self.spaces}
        self.gram = set(gram)
        self.mask = mask
        self.by_tensor: dict[str, list[Space]] = {}
        for space in self.spaces:
            self.by_tensor.setdefault(space.tensor, []).append(space)
        self.session = make_session(expose(model, sorted(self.by_tensor)), exact=True, threads=threads,
                                    label="calibration model")

    def empty(self, source: str = "") -> CalibrationStats:
        return empty_stats(self.spaces, self.sizes, self.gram, source)

    def shard(self, feeds: Iterable[dict], first: int = 0, source: str = "") -> CalibrationStats:
        """The statistics of ``feeds`` alone (``first``: the number of the first one, for messages)."""
        stats, mask = self.empty(source), self.mask
        for i, feed in enumerate(feeds, start=first):
            values = run_session(self.session, feed, label="calibration model", sample=i)
            for name, members in self.by_tensor.items():
                valid = _valid_tokens(mask, feed, name, values[name])
                for space in members:
                    try:
                        stats.spaces[space].update(values[name], valid)
                    except ValueError as exc:
                        raise DataError(f"calibration sample {i}: {exc}") from exc
            stats.samples += 1
            if mask is not None and mask.input in feed:
                real = np.asarray(feed[mask.input]) != 0
                stats.sequences += int(real.shape[0]) if real.ndim == 2 else 0
                stats.tokens += int(real.sum())
        return stats


def calibrate(model: onnx.ModelProto, spaces: Iterable[Space], feeds: Iterable[dict], *, sizes: Mapping,
              gram: Iterable[Space] = (), progress: bool = False, total: int | None = None,
              source: str = "", mask: TokenMask | None = None) -> CalibrationStats:
    """Statistics of ``spaces`` (activation axes of ``model``) over ``feeds``, in this process.

    ``sizes`` maps each space to its number of positions; ``gram`` lists the spaces whose Gram
    matrix is also accumulated (for the re-fit); ``mask`` (see :mod:`.tokens`) leaves padded
    tokens out.
    """
    collector = Collector(model, spaces, sizes=sizes, gram=gram, mask=mask)
    stats = collector.empty(source)
    stream = iter(progress_iter(feeds, total=total, desc="calibrating", enabled=progress, unit="sample"))
    while True:
        part = collector.shard(islice(stream, SHARD_SAMPLES), first=stats.samples, source=source)
        if not part.samples:
            break
        stats.merge(part)
    return finished(stats, source)


def finished(stats: CalibrationStats, source: str) -> CalibrationStats:
    """``stats``, or a DataError when no sample was seen."""
    if stats.samples == 0:
        raise DataError(f"no calibration samples in {source or 'the data'}")
    log.info("calibrated %d spaces on %d samples", len(stats.spaces), stats.samples)
    return stats


def _valid_tokens(mask: TokenMask | None, feed: Mapping, tensor: str, value):
    """Where ``tensor``'s elements are real tokens in this feed (None: every element counts)."""
    if mask is None:
        return None
    valid = mask.valid(feed, tensor, value.shape)
    if valid is None and tensor in mask.axes:
        log.warning("calibration: the %s of the feed does not fit %s of shape %s; its padded tokens count too",
                    mask.input, tensor, tuple(value.shape))
    return valid
