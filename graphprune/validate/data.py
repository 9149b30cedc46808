"""User data for validation/calibration: arrays, ``.npz``/``.npy`` files, or a folder of images.

Every source becomes a stream of feeds (``dict[input name, np.ndarray]``) checked against the
model's inputs (names, rank, fixed dims, dtype kind):

* ``dict`` name -> array: one feed; a ``list`` of such dicts: one feed each.
* ``.npz``: keys are input names (a model with one input also accepts a single array of any
  key, e.g. ``arr_0`` from ``np.savez``). ``.npy``: the array of a one-input model.
  An array with one more axis than the input is a stack of samples along axis 0.
* a folder of images (sorted by file name; needs pillow, the ``images`` extra) for a model
  with one 4-D input: each image is converted to RGB (or L for one channel), resized to
  ``size`` (default: the input's fixed H, W), scaled to [0, 1], reordered to ``channel_order``,
  normalized ``(x - mean) / std`` per channel (``mean``/``std`` in [0, 1] units and in the
  model's channel order, e.g. ImageNet RGB 0.485,0.456,0.406 / 0.229,0.224,0.225), and laid out
  as ``layout``; a fixed batch
  size B > 1 groups B images per feed (a trailing partial batch is dropped, with a log line).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import onnx

from ..errors import DataError, UsageError
from .feeds import InputSpec, model_inputs
from .runner import as_model

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp"})
LAYOUTS = ("NCHW", "NHWC")
CHANNEL_ORDERS = ("RGB", "BGR")


def load_inputs(spec, model, *, mean=None, std=None, size=None, layout: str = "NCHW",
                channel_order: str = "RGB", limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Load up to ``limit`` feeds from ``spec`` (see module docstring) for ``model`` (proto or path)."""
    return list(iter_inputs(spec, model, mean=mean, std=std, size=size, layout=layout,
                            channel_order=channel_order, limit=limit))


def iter_inputs(spec, model, *, mean=None, std=None, size=None, layout: str = "NCHW",
                channel_order: str = "RGB", limit: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Streaming form of :func:`load_inputs` (image folders are decoded lazily)."""
    if limit is not None and limit < 1:
        raise UsageError(f"the sample limit must be at least 1 (got {limit})")
    specs = model_inputs(as_model(model))
    if isinstance(spec, (str, os.PathLike)):
        stream = _from_path(Path(spec), specs, ImageOptions(mean, std, size, layout, channel_order))
    elif isinstance(spec, Mapping):
        stream = _from_arrays(dict(spec), specs, "the data dict")
    elif isinstance(spec, Sequence):
        stream = _from_list(spec, specs)
    else:
        raise UsageError(f"data must be a path, a dict of arrays or a list of dicts, not {type(spec).__name__}")
    return _checked(islice(stream, limit), specs)


def _from_list(items: Sequence, specs: list[InputSpec]) -> Iterator[dict[str, np.ndarray]]:
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise UsageError(f"data item {i} is a {type(item).__name__}; expected a dict of input name -> array")
        yield from _from_arrays(dict(item), specs, f"data item {i}")


def _from_path(path: Path, specs: list[InputSpec], image_opts: "ImageOptions") -> Iterator[dict]:
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        return _from_images(path, specs, image_opts)
    suffix = path.suffix.lower()
    if suffix not in (".npz", ".npy"):
        raise DataError(f"{path}: unsupported data file (expected .npz, .npy or a folder of images)")
    return _from_arrays(_read_arrays(path, specs), specs, str(path))


def _read_arrays(path: Path, specs: list[InputSpec]) -> dict[str, np.ndarray]:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as loaded:
                return {k: loaded[k] for k in loaded.files}
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from exc
    if len(specs) != 1:
        raise DataError(f"{path}: a .npy file holds one array, but the model has {len(specs)} inputs "
                        f"{[s.name for s in specs]}; use an .npz with one array per input name")
    return {specs[0].name: array}


def _from_arrays(arrays: dict, specs: list[InputSpec], source: str) -> Iterator[dict[str, np.ndarray]]:
    """Split a name -> array mapping into feeds (stacked arrays give several feeds)."""
    names = [s.name for s in specs]
    if len(specs) == 1 and names[0] not in arrays and len(arrays) == 1:
        arrays = {names[0]: next(iter(arrays.values()))}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise DataError(f"{source}: no array for input(s) {missing}; it holds {sorted(arrays)}")
    extra = sorted(set(arrays) - set(names))
    if extra:
        log.warning("%s: ignoring arrays %s (not inputs of the model)", source, extra)
    stacked = {s.name: _is_stacked(np.asarray(arrays[s.name]), s, source) for s in specs}
    counts = {len(arrays[n]) for n in names if stacked[n]}
    if len(counts) > 1:
        raise DataError(f"{source}: stacked arrays disagree on the number of samples: "
                        f"{ {n: len(arrays[n]) for n in names if stacked[n]} }")
    if not counts:
        yield {n: np.asarray(arrays[n]) for n in names}
        return
    for i in range(counts.pop()):
        yield {n: np.asarray(arrays[n][i] if stacked[n] else arrays[n]) for n in names}


def _is_stacked(array: np.ndarray, spec: InputSpec, source: str) -> bool:
    if spec.dims is None or array.ndim == len(spec.dims):
        return False
    if array.ndim == len(spec.dims) + 1:
        return True
    raise DataError(f"{source}: array for input {spec.name!r} has rank {array.ndim}; the input has rank "
                    f"{len(spec.dims)} (or {len(spec.dims) + 1} for a stack of samples)")


def _checked(stream, specs: list[InputSpec]) -> Iterator[dict[str, np.ndarray]]:
    for i, feed in enumerate(stream):
        yield {s.name: _conform(feed[s.name], s, i) for s in specs}


def _conform(array: np.ndarray, spec: InputSpec, index: int) -> np.ndarray:
    """Check rank/fixed dims and cast to the input dtype when the kinds are compatible."""
    array = np.asarray(array)
    if spec.dims is not None:
        if array.ndim != len(spec.dims):
            raise DataError(f"sample {index}: input {spec.name!r} needs rank {len(spec.dims)}, the data has "
                            f"shape {tuple(array.shape)}")
        for axis, (want, got) in enumerate(zip(spec.dims, array.shape)):
            if isinstance(want, int) and want != got:
                raise DataError(f"sample {index}: input {spec.name!r} axis {axis} must be {want}, the data has "
                                f"shape {tuple(array.shape)}")
    if array.dtype == spec.dtype:
        return array
    if array.dtype.kind == "f" and spec.dtype.kind in "iub":
        raise DataError(f"sample {index}: input {spec.name!r} is {spec.dtype}, the data is {array.dtype} "
                        "(refusing to truncate floats)")
    if array.dtype.kind not in "fiub":
        raise DataError(f"sample {index}: input {spec.name!r} is {spec.dtype}, the data is {array.dtype}")
    return array.astype(spec.dtype)


# ---------------------------------------------------------------------------------------- images
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


def _from_images(folder: Path, specs: list[InputSpec], opts: ImageOptions) -> Iterator[dict]:
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
    return _image_batches(files, spec, batch, (ch, h, w), opts, Image)


def _image_batches(files, spec, batch, chw, opts, image_module) -> Iterator[dict]:
    if len(files) % batch:
        log.warning("%d images do not fill batches of %d; the last %d are not used",
                    len(files), batch, len(files) % batch)
    integer = spec.dtype.kind in "iu"
    if integer and (opts.mean is not None or opts.std is not None):
        raise UsageError(f"input {spec.name!r} is {spec.dtype}: raw 0..255 pixels are fed, --mean/--std do not apply")
    for start in range(0, len(files) - batch + 1, batch):
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


__all__ = ["load_inputs", "iter_inputs", "ImageOptions", "IMAGE_SUFFIXES"]
