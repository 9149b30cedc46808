"""User data for validation/calibration: arrays, ``.npz``/``.npy`` files, or a folder of images.

Every source becomes a stream of feeds (``dict[input name, np.ndarray]``) checked against the
model's inputs (names, rank, fixed dims, dtype kind):

* ``dict`` name -> array: one feed; a ``list`` (or an iterator, consumed lazily) of such dicts: one
  feed each.
* ``.npz``: keys are input names (a model with one input also accepts a single array of any
  key, e.g. ``arr_0`` from ``np.savez``). ``.npy``: the array of a one-input model.
  An array with one more axis than the input is a stack of samples along axis 0; an array of
  the input's rank holding N x B along axis 0 for an input of fixed batch B (e.g. ``(N, 3, H, W)``
  for ``[1, 3, H, W]``) is N samples (a log line says so).
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
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from .inputs import InputSpec, model_inputs
from .images import IMAGE_SUFFIXES, ImageOptions, from_images
from ..io.read import as_model

log = logging.getLogger(__name__)



def load_inputs(spec, model, *, mean=None, std=None, size=None, layout: str = "NCHW",
                channel_order: str = "RGB", limit: int | None = None) -> list[dict[str, np.ndarray]]:
    """Load up to ``limit`` feeds from ``spec`` (see module docstring) for ``model`` (proto or path)."""
    return list(iter_inputs(spec, model, mean=mean, std=std, size=size, layout=layout,
                            channel_order=channel_order, limit=limit))


def iter_inputs(spec, model, *, mean=None, std=None, size=None, layout: str = "NCHW",
                channel_order: str = "RGB", limit: int | None = None,
                select: Collection[int] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Streaming form of :func:`load_inputs` (image folders are decoded lazily).

    ``select``: only the samples at these positions of the stream, in stream order (an image
    folder decodes only their files); ``limit`` then counts the selected samples.
    """
    if limit is not None and limit < 1:
        raise UsageError(f"the sample limit must be at least 1 (got {limit})")
    specs = model_inputs(as_model(model))
    chosen = None if select is None else frozenset(int(i) for i in select)
    if isinstance(spec, (str, os.PathLike)):
        stream = _from_path(Path(spec), specs, ImageOptions(mean, std, size, layout, channel_order), chosen)
    elif isinstance(spec, Mapping):
        stream = _from_arrays(dict(spec), specs, "the data dict")
    elif isinstance(spec, (Sequence, Iterator)):
        stream = _from_list(spec, specs)
    else:
        raise UsageError(f"data must be a path, a dict of arrays, a list or an iterator of dicts, not "
                         f"{type(spec).__name__}")
    if chosen is not None and not (isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir()):
        stream = (feed for i, feed in enumerate(stream) if i in chosen)
    return _checked(islice(stream, limit), specs)


def count_inputs(spec, model, *, mean=None, std=None, size=None, layout: str = "NCHW",
                 channel_order: str = "RGB") -> int:
    """How many feeds :func:`iter_inputs` yields for ``spec`` (image files are counted, not decoded)."""
    if isinstance(spec, (str, os.PathLike)) and Path(spec).is_dir():
        from .images import count_image_feeds

        opts = ImageOptions(mean, std, size, layout, channel_order)
        return count_image_feeds(Path(spec), model_inputs(as_model(model)), opts)
    return sum(1 for _ in iter_inputs(spec, model, mean=mean, std=std, size=size, layout=layout,
                                      channel_order=channel_order))


def _from_list(items: Iterable, specs: list[InputSpec]) -> Iterator[dict[str, np.ndarray]]:
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise UsageError(f"data item {i} is a {type(item).__name__}; expected a dict of input name -> array")
        yield from _from_arrays(dict(item), specs, f"data item {i}")


def _from_path(path: Path, specs: list[InputSpec], image_opts: ImageOptions,
               chosen: frozenset | None = None) -> Iterator[dict]:
    if not path.exists():
        raise DataError(f"{path}: no such file or directory")
    if path.is_dir():
        return from_images(path, specs, image_opts, chosen)
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
    arrays = {n: np.asarray(arrays[n]) for n in names}
    splits = {s.name: _split(arrays[s.name], s, source) for s in specs}
    counts = {n: split[0] for n, split in splits.items() if split}
    if len(set(counts.values())) > 1:
        raise DataError(f"{source}: stacked arrays disagree on the number of samples: {counts}")
    if not counts:
        yield arrays
        return
    for i in range(next(iter(counts.values()))):
        yield {n: splits[n][1](i) if splits[n] else arrays[n] for n in names}


def _split(array: np.ndarray, spec: InputSpec, source: str):
    """``(samples, i -> sample i)`` when ``array`` holds several samples for ``spec``, else None.

    An array with one more axis than the input is a stack along axis 0. An array of the input's
    rank whose axis 0 is a multiple of the input's fixed batch B (and not B itself) holds its
    samples one after the other along axis 0, B at a time.
    """
    if spec.dims is None:
        return None
    rank = len(spec.dims)
    if array.ndim == rank + 1:
        return len(array), array.__getitem__
    if array.ndim != rank:
        raise DataError(f"{source}: array for input {spec.name!r} has rank {array.ndim}; the input has rank "
                        f"{rank} (or {rank + 1} for a stack of samples)")
    batch = spec.dims[0] if rank else None
    if not isinstance(batch, int) or array.shape[0] == batch or array.shape[0] % batch:
        return None
    samples = array.shape[0] // batch
    log.info("%s: input %r has batch %d and its array holds %d along axis 0: split into %d samples",
             source, spec.name, batch, array.shape[0], samples)
    return samples, lambda i: array[i * batch:(i + 1) * batch]


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


__all__ = ["load_inputs", "iter_inputs", "ImageOptions", "IMAGE_SUFFIXES"]
