"""Image folders as feeds: decode, resize, scale, reorder channels, normalize, lay out.

Used by :mod:`graphprune.validation.data_files` (see its docstring for the exact preprocessing);
pillow is imported only when a folder is actually read.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from .inputs import InputSpec

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp"})
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")


class ImageOptions:
    """Preprocessing of an image folder (validated once, applied to every image)."""

    def __init__(self, mean=None, std=None, size=None, layout="NCHW", channel_order="RGB"):
        self.layout = str(layout).upper()
        if self.layout not in LAYOUTS:
            raise UsageError(f"layout must be one of {LAYOUTS}, not {layout!r}")
        self.channel_order = str(channel_order).upper()
        if self.channel_order not in CHANNEL_ORDERS:
            raise UsageError(f"channel order must be one of {CHANNEL_ORDERS}, not {channel_order!r}")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32).reshape(-1)
        self.std = None if std is None else np.asarray(std, dtype=np.float32).reshape(-1)
        if self.std is not None and np.any(self.std == 0):
            raise UsageError("std must not contain 0")
        self.size = _parse_size(size)


def _parse_size(size) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    size = tuple(int(s) for s in size)
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) <= 0:
        raise UsageError(f"image size must be one positive int or (height, width), not {size}")
    return size


def _image_geometry(spec: InputSpec, opts: ImageOptions) -> tuple[int, int, int, int]:
    """(batch, channels, height, width) of the image input, from the model and the options."""
    if spec.dims is None or len(spec.dims) != 4:
        raise DataError(f"image folders need a model whose input is 4-D; {spec.name!r} is "
                        f"{'of unknown rank' if spec.dims is None else f'{len(spec.dims)}-D'}")
    n, a, b, c = spec.dims
    ch, h, w = (a, b, c) if opts.layout == "NCHW" else (c, a, b)
    if ch not in (1, 3):
        raise DataError(f"input {spec.name!r} has {ch} channels on the {opts.layout} channel axis; images give "
                        "1 or 3 (wrong --layout?)")
    if opts.size is not None:
        h, w = opts.size
    elif not (isinstance(h, int) and isinstance(w, int)):
        raise UsageError(f"input {spec.name!r} has dynamic height/width; give the image size with --size H[xW]")
    batch = n if isinstance(n, int) else 1
    return batch, ch, h, w


def from_images(folder: Path, specs: list[InputSpec], opts: ImageOptions,
                chosen: Collection[int] | None = None) -> Iterator[dict]:
    """Feeds from the image files of ``folder`` (sorted by name) for a one-input model; ``chosen``:
    only the feeds at these positions (the other files are not read)."""
    try:
        from PIL import Image
    except ImportError as exc:
        raise DataError("reading a folder of images needs pillow: pip install 'graphprune[images]'") from exc
    if len(specs) != 1:
        raise DataError(f"{folder}: image folders feed models with one input; this one has "
                        f"{[s.name for s in specs]}")
    spec = specs[0]
    batch, ch, h, w = _image_geometry(spec, opts)
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return _image_batches(files, spec, batch, (ch, h, w), opts, Image, chosen)


def count_image_feeds(folder: Path, specs: list[InputSpec], opts: ImageOptions) -> int:
    """How many feeds :func:`from_images` yields for ``folder`` (files are listed, not decoded)."""
    if len(specs) != 1:
        raise DataError(f"{folder}: image folders feed models with one input; this one has "
                        f"{[s.name for s in specs]}")
    batch = _image_geometry(specs[0], opts)[0]
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    return len(files) // batch


def _image_batches(files, spec, batch, chw, opts, image_module, chosen=None) -> Iterator[dict]:
    if len(files) % batch:
        log.warning("%d images do not fill batches of %d; the last %d are not used",
                    len(files), batch, len(files) % batch)
    integer = spec.dtype.kind in "iu"
    if integer and (opts.mean is not None or opts.std is not None):
        raise UsageError(f"input {spec.name!r} is {spec.dtype}: raw 0..255 pixels are fed, --mean/--std do not apply")
    for start in range(0, len(files) - batch + 1, batch):
        if chosen is not None and start // batch not in chosen:
            continue
        arrays = [_read_image(p, chw, opts, image_module, raw=integer) for p in files[start:start + batch]]
        yield {spec.name: np.stack(arrays).astype(spec.dtype)}


def _read_image(path: Path, chw, opts: ImageOptions, image_module, raw: bool = False) -> np.ndarray:
    """One image as a float32 (C, H, W) or (H, W, C) array; ``raw`` keeps 0..255 pixel values."""
    ch, h, w = chw
    try:
        with image_module.open(path) as img:
            img = img.convert("L" if ch == 1 else "RGB").resize((w, h), image_module.BILINEAR)
            pixels = np.asarray(img, dtype=np.float32)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read image ({exc})") from exc
    pixels = pixels.reshape(h, w, ch)
    if opts.channel_order == "BGR":
        pixels = pixels[..., ::-1]
    if not raw:
        pixels = pixels / 255.0
        if opts.mean is not None:
            pixels = pixels - _per_channel(opts.mean, ch, "mean")
        if opts.std is not None:
            pixels = pixels / _per_channel(opts.std, ch, "std")
    return np.ascontiguousarray(pixels.transpose(2, 0, 1) if opts.layout == "NCHW" else pixels)


def _per_channel(values: np.ndarray, ch: int, what: str) -> np.ndarray:
    if values.size not in (1, ch):
        raise UsageError(f"{what} has {values.size} values; the input has {ch} channel(s)")
    return values
