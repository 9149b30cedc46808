"""Run calibration feeds through onnxruntime with intermediate tensors exposed as outputs.

Feeds are consumed one at a time (a generator is never materialized) and every exposed tensor
is reduced into :class:`~graphprune.calibration.stats.SpaceStats` right away, so memory stays
at one feed's activations whatever the number of samples.
"""
from __future__ import annotations

import logging
import hashlib
from collections.abc import Iterable, Mapping

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
        from ..validation.runner import as_model
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


def calibrate(model: onnx.ModelProto, spaces: Iterable[Space], feeds: Iterable[dict], *, sizes: Mapping,
              gram: Iterable[Space] = (), progress: bool = False, total: int | None = None,
              source: str = "", mask: TokenMask | None = None) -> CalibrationStats:
    """Statistics of ``spaces`` (activation axes of ``model``) over ``feeds``.

    ``sizes`` maps each space to its number of positions; ``gram`` lists the spaces whose Gram
    matrix is also accumulated (for the re-fit); ``mask`` (see :mod:`.tokens`) leaves padded
    tokens out.
    """
    spaces = sorted(set(spaces))
    gram = set(gram)
    stats = CalibrationStats(source=source)
    for space in spaces:
        stats.add_space(space, sizes[space], gram=space in gram)
    tensors = sorted({s.tensor for s in spaces})
    session = make_session(expose(model, tensors), exact=True, label="calibration model")
    by_tensor: dict[str, list[Space]] = {}
    for space in spaces:
        by_tensor.setdefault(space.tensor, []).append(space)
    for i, feed in enumerate(progress_iter(feeds, total=total, desc="calibrating", enabled=progress, unit="sample")):
        values = run_session(session, feed, label="calibration model", sample=i)
        for name, members in by_tensor.items():
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
    if stats.samples == 0:
        raise DataError(f"no calibration samples in {source or 'the data'}")
    log.info("calibrated %d spaces on %d samples", len(spaces), stats.samples)
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
