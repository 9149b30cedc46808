"""Calibration feeds as the options name them, and input shapes read from them.

Not a stage: ``score`` (calibration statistics) and the compositions (sensitivity feeds, input
shapes for counting) share it.
"""
from __future__ import annotations

import logging
from dataclasses import replace

from .options import Options

log = logging.getLogger(__name__)


def option_feeds(options: Options, model, samples: int | None, text_batch: int | None = None):
    """The stream of calibration feeds ``options`` name (``samples`` of them; sentences for text,
    ``text_batch`` sentences per feed)."""
    from ..calibration import calibration_feeds

    return calibration_feeds(options.calib, model, limit=samples, image_options=options.image_options,
                             tokenizer=options.tokenizer, max_length=options.max_length,
                             text_batch=text_batch)


def calibration_label(options: Options) -> str:
    return str(options.calib) if not isinstance(options.calib, (dict, list)) else "arrays"


def with_data_shapes(options: Options, model) -> Options:
    """``options`` with ``input_shapes`` read from the first calibration sample (else the first
    ``data`` sample), batch 1, when the user gave none and ``model`` has dynamic input dims other
    than the batch (a sequence length): parameters and MACs are then counted at the data's shape
    (for text calibration data, at ``max_length`` tokens)."""
    from ..validation.data_files import iter_inputs
    from ..validation.feeds import model_inputs

    if options.input_shapes is not None or (options.calib is None and options.data is None):
        return options
    specs = model_inputs(model)
    if not any(spec.dims and any(not isinstance(d, int) for d in spec.dims[1:]) for spec in specs):
        return options
    if options.calib is not None:
        feeds = option_feeds(options, model, 1)
    else:
        feeds = iter_inputs(options.data, model, limit=1, **dict(options.image_options or {}))
    first = next(iter(feeds), None)
    if first is None:
        return options
    shapes = {spec.name: (1,) + tuple(first[spec.name].shape[1:]) for spec in specs if spec.name in first}
    if options.tokenizer is not None:  # text batches are padded to their own longest sentence: count at the limit
        shapes = {name: (1, options.max_length) if len(shape) == 2 and _dynamic(specs, name) else shape
                  for name, shape in shapes.items()}
    log.info("counting MACs at the shapes of the first %s sample (batch 1): %s",
             "calibration" if options.calib is not None else "data",
             ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in shapes.items()))
    return replace(options, input_shapes=shapes)


def _dynamic(specs, name: str) -> bool:
    """Whether input ``name`` has a dynamic sequence axis (axis 1)."""
    spec = next(s for s in specs if s.name == name)
    return bool(spec.dims) and len(spec.dims) == 2 and not isinstance(spec.dims[1], int)
