"""Reading ONNX files safely.

:func:`load_model` turns every way a file can be wrong into one readable line
(:class:`ModelLoadError`, :class:`InvalidModelError` or :class:`UnsafeModelError`, exit 3):
missing, a directory or device, empty, not ONNX, truncated, sizes that disagree with the data,
an invalid graph (see :mod:`graphprune.input_checks`). External-data locations that leave the
model's directory (absolute, ``..``, symbolic links resolving outside) are refused before a byte
of any data file is opened, and every data file is opened without following links.
"""
from __future__ import annotations

import logging
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from ..errors import ModelLoadError, UnsafeModelError
from ..graph.proto import copy_fields
from ..input_checks import (
    check_declared_shapes,
    check_structure,
    check_tensors,
    check_versions,
    iter_tensors,
    normalize_declared_dims,
    run_checker,
    tensor_nbytes,
)
from ..progress import progress

log = logging.getLogger(__name__)

#: the largest serialized protobuf message (a model file above it must use external data)
PROTOBUF_LIMIT = 2**31 - 1
_ZIP_MAGIC = b"PK\x03\x04"
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_BINARY = getattr(os, "O_BINARY", 0)

#: resolved model path -> resolved external-data files it was loaded from (never overwritten)
_EXTERNAL_FILES: dict[Path, frozenset[Path]] = {}

# --------------------------------------------------------------------------- reading the proto
def _stat_input(path: Path) -> os.stat_result:
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise ModelLoadError(f"{path}: no such file") from exc
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot access ({exc.strerror or exc})") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ModelLoadError(f"{path}: is a directory, expected an .onnx file")
    if not stat.S_ISREG(st.st_mode):
        raise ModelLoadError(f"{path}: is not a regular file (a device, pipe or socket); expected an .onnx file")
    if st.st_size == 0:
        raise ModelLoadError(f"{path}: file is empty")
    if st.st_size > PROTOBUF_LIMIT:
        raise ModelLoadError(
            f"{path}: is {st.st_size:,} bytes, more than the 2 GB a single ONNX protobuf can hold; a model this "
            "large must keep its weights in external data files")
    return st


def _read_proto(path: Path) -> onnx.ModelProto:
    """Parse the model file through a read-only memory map (no second copy of its bytes)."""
    _stat_input(path)
    model = onnx.ModelProto()
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            if mm[:4] == _ZIP_MAGIC:
                raise ModelLoadError(f"{path}: is a zip archive (a PyTorch checkpoint?), not an ONNX model")
            with memoryview(mm) as view:
                model.ParseFromString(view)
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except (DecodeError, RuntimeError, ValueError, TypeError) as exc:
        raise ModelLoadError(
            f"{path}: not an ONNX model (protobuf parse failed: truncated or corrupted file?)") from exc
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelLoadError(f"{path}: not an ONNX model (no graph found)")
    return model


# --------------------------------------------------------------------------- external data
def _external_entries(tensor: onnx.TensorProto, where: str) -> tuple[str, int, int | None]:
    """(location, offset, length) of an external tensor, validated as plain non-negative numbers."""
    entries = {e.key: e.value for e in tensor.external_data}
    location = entries.get("location", "")
    numbers = {}
    for key in ("offset", "length"):
        text = entries.get(key)
        if text is None or text == "":
            numbers[key] = None
            continue
        if not text.isdigit():
            raise ModelLoadError(f"{where}: tensor {tensor.name!r}: external data {key} {text!r} is not a "
                                 "non-negative integer (corrupted file?)")
        numbers[key] = int(text)
    return location, numbers["offset"] or 0, numbers["length"]


def check_external_location(base: Path, location: str, tensor_name: str) -> Path:
    """Resolve an external-data location, refusing anything outside the directory ``base``."""
    if not location:
        raise UnsafeModelError(f"tensor {tensor_name!r}: external data has no location")
    if "\0" in location:
        raise UnsafeModelError(f"tensor {tensor_name!r}: external data location contains a NUL byte; refused")
    parts = location.replace("\\", "/").split("/")
    if location.startswith(("/", "\\")) or Path(location).is_absolute() or (len(location) > 1 and location[1] == ":"):
        raise UnsafeModelError(
            f"tensor {tensor_name!r}: external data location {location!r} is absolute; refused "
            "(only files inside the model's directory are read)")
    if ".." in parts:
        raise UnsafeModelError(
            f"tensor {tensor_name!r}: external data location {location!r} leaves the model's directory; refused")
    base_real = base.resolve()
    target = (base / location).resolve()
    if base_real not in target.parents:
        raise UnsafeModelError(
            f"tensor {tensor_name!r}: external data location {location!r} resolves to {target}, outside the "
            f"model's directory {base_real} (symbolic link?); refused (copy the data file beside the model)")
    return target


def _plan_external(model: onnx.ModelProto, path: Path) -> dict[Path, list[tuple[onnx.TensorProto, int, int]]]:
    """Every external tensor's (file, offset, length), all checked before any data file is opened."""
    base = path.parent
    plan: dict[Path, list] = {}
    sizes: dict[Path, int] = {}
    for tensor in iter_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location, offset, length = _external_entries(tensor, str(path))
        target = check_external_location(base, location, tensor.name)
        if target not in sizes:
            try:
                st = os.stat(target)
            except FileNotFoundError:
                raise ModelLoadError(
                    f"{path}: external data file {location!r} for tensor {tensor.name!r} is missing "
                    f"(expected {target})") from None
            except OSError as exc:
                raise ModelLoadError(f"{path}: external data file {location!r}: {exc.strerror or exc}") from exc
            if not stat.S_ISREG(st.st_mode):
                raise ModelLoadError(f"{path}: external data {location!r} for tensor {tensor.name!r} is not a "
                                     "regular file")
            sizes[target] = st.st_size
        expected = tensor_nbytes(tensor)
        if expected is None:
            raise ModelLoadError(f"{path}: tensor {tensor.name!r} of element type {tensor.data_type} cannot be "
                                 "stored as external data")
        if length is not None and length != expected:
            raise ModelLoadError(
                f"{path}: tensor {tensor.name!r} declares shape {list(tensor.dims)} ({expected:,} bytes) but its "
                f"external data length is {length:,} (corrupted file?)")
        if offset + expected > sizes[target]:
            raise ModelLoadError(
                f"{path}: external data for tensor {tensor.name!r} needs bytes {offset:,}..{offset + expected:,} of "
                f"{location!r}, which has only {sizes[target]:,} (truncated?)")
        plan.setdefault(target, []).append((tensor, offset, expected))
    return plan


def _open_no_follow(target: Path):
    """Open a checked data file read-only without following a link swapped in after the check."""
    before = os.stat(target)
    fd = os.open(target, os.O_RDONLY | _O_NOFOLLOW | _O_BINARY)
    after = os.fstat(fd)
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(after.st_mode):
        os.close(fd)
        raise UnsafeModelError(f"external data file {target} changed while it was being opened; refused")
    return os.fdopen(fd, "rb")


#: external data above this size shows a progress bar while it is read (when stderr is a terminal)
PROGRESS_BYTES = 256 * 2**20


def _read_external(plan: dict, path: Path) -> None:
    total = sum(length for tensors in plan.values() for _, _, length in tensors)
    for target, tensors in plan.items():
        try:
            with _open_no_follow(target) as fh:
                for tensor, offset, length in progress(tensors, total=len(tensors), unit="tensor",
                                                       desc=f"loading {target.name}", enabled=total > PROGRESS_BYTES):
                    fh.seek(offset)
                    data = fh.read(length)
                    if len(data) != length:
                        raise ModelLoadError(f"{path}: external data file {target.name} ended early (truncated?)")
                    tensor.raw_data = data
                    del data
                    del tensor.external_data[:]
                    tensor.ClearField("data_location")
        except OSError as exc:
            raise ModelLoadError(f"{path}: cannot read external data file {target.name} "
                                 f"({exc.strerror or exc})") from exc


def load_model(path: str | os.PathLike, load_external: bool = True, check: bool = True) -> onnx.ModelProto:
    """Load an ONNX model and its external data, refusing unsafe, broken or invalid files.

    ``check`` runs the graph checks of :func:`graphprune.input_checks.check_model` (a graph listed
    out of topological order is sorted); declared dims of -1 become unknown
    (:func:`graphprune.input_checks.normalize_declared_dims`); nothing else is changed.
    """
    return read_model(path, load_external, check)[0]


def read_model(path: str | os.PathLike, load_external: bool = True,
               check: bool = True) -> tuple[onnx.ModelProto, ModelFile | None]:
    """:func:`load_model`'s model, and its file as a :class:`ModelFile` when the file holds exactly
    that model (nothing was sorted or made unknown, and the external data was read), else None."""
    path = Path(path)
    label = str(path)
    before = _stamp(path)
    model = _read_proto(path)
    changed = normalize_declared_dims(model, label)
    check_tensors(model, label)
    plan = _plan_external(model, path)
    stamps = ((path, before), *((target, _stamp(target)) for target in plan))
    if check:
        check_versions(model, label)
        check_declared_shapes(model, label)
        changed += check_structure(model, label)
    _EXTERNAL_FILES[path.resolve()] = frozenset(plan)
    if plan and load_external:
        _read_external(plan, path)
    if check:
        run_checker(model, label)
    as_read = not changed and (load_external or not plan)
    return model, ModelFile(path, model, stamps) if as_read else None


def _stamp(path: Path) -> tuple[int, ...] | None:
    """What tells a file's versions apart: device, inode, size and modification time (None: gone)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


@dataclass(frozen=True, eq=False)
class ModelFile:
    """A model file (and its external-data files) holding exactly ``proto``, as :func:`read_model`
    read it. onnxruntime can read it itself: no copy of the weights is made in Python, and the
    interpreter's lock stays free while onnxruntime reads and parses it."""

    path: Path
    proto: onnx.ModelProto
    #: (file, :func:`_stamp`) of the model file and each external-data file, before they were read
    stamps: tuple[tuple[Path, tuple | None], ...]

    def unchanged(self) -> bool:
        """True while every file still has the stamp it had when it was read."""
        return all(stamp is not None and _stamp(file) == stamp for file, stamp in self.stamps)


def external_files_of(path: str | os.PathLike, parse: bool = True) -> frozenset[Path]:
    """Resolved external-data files a model file refers to (safe locations only).

    Models loaded by :func:`load_model` in this process are answered from memory; others are
    parsed (without their data) unless ``parse`` is False.
    """
    path = Path(path)
    known = _EXTERNAL_FILES.get(path.resolve())
    if known is not None or not parse:
        return known or frozenset()
    try:
        model = _read_proto(path)
    except ModelLoadError:
        return frozenset()
    out = set()
    for tensor in iter_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = {e.key: e.value for e in tensor.external_data}.get("location", "")
            try:
                out.add(check_external_location(path.parent, location, tensor.name))
            except UnsafeModelError:
                continue
    return frozenset(out)


# --------------------------------------------------------------------------- sizes
def model_byte_size(model: onnx.ModelProto) -> int:
    """Serialized size of ``model``, without serializing it (``ByteSize`` would encode a full copy).

    Main-graph initializers stored as raw bytes are counted from their dims; everything else
    (nodes, small tensors, subgraphs) is measured on a light copy.
    """
    light = onnx.ModelProto()
    copy_fields(model, light, skip=("graph",))
    copy_fields(model.graph, light.graph, skip=("initializer",))
    total = light.ByteSize()
    for t in model.graph.initializer:
        raw = tensor_nbytes(t) if t.HasField("raw_data") else None
        if raw is None:
            total += t.ByteSize() + 6
        else:
            total += raw + len(t.name) + 10 * (len(t.dims) + 4) + 6
    return total


ModelLike = onnx.ModelProto | str | os.PathLike


def as_model(model: ModelLike) -> onnx.ModelProto:
    """A ModelProto from a ModelProto or a path (loaded safely through :func:`graphprune.io.load_model`)."""
    if isinstance(model, onnx.ModelProto):
        return model
    return load_model(model)


def model_label(model: ModelLike, default: str) -> str:
    """A short name for messages: the file name for paths, ``default`` for in-memory models."""
    return default if not isinstance(model, (str, os.PathLike)) else Path(model).name
