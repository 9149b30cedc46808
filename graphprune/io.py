"""Loading and saving ONNX models safely.

* :func:`load_model` turns every way a file can be wrong into one readable line
  (:class:`ModelLoadError`, :class:`InvalidModelError` or :class:`UnsafeModelError`, exit 3):
  missing, a directory or device, empty, not ONNX, truncated, sizes that disagree with the
  data, an invalid graph (see :mod:`graphprune.safety`). External-data locations that leave
  the model's directory (absolute, ``..``, symbolic links resolving outside) are refused before
  a byte of any data file is opened, and every data file is opened without following links.
* :func:`save_model` writes atomically (a temporary directory beside the output, then
  ``os.replace``), never overwrites the input (or the input's data files) unless ``--force``
  names the input itself, and switches to external data (``<output>.data``, written beside the
  output) when the model would not fit the 2 GB protobuf limit. The model passed in is never
  modified, and its weights are streamed to the data file one tensor at a time.
"""
from __future__ import annotations

import logging
import mmap
import os
import stat
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError

from .errors import ModelLoadError, OutputError, UnsafeModelError, UsageError
from .graph import copy_fields
from .progress import progress
from .safety import (
    check_declared_shapes,
    check_structure,
    check_tensors,
    check_versions,
    iter_tensors,
    normalize_declared_dims,
    run_checker,
    tensor_nbytes,
)

log = logging.getLogger(__name__)

PROTOBUF_LIMIT = 2**31 - 1
#: models whose serialized size would exceed this are saved with external data (tests lower it)
EXTERNAL_DATA_THRESHOLD = PROTOBUF_LIMIT - 2**20
#: in a model saved with external data, tensors of at least this many bytes go to the data file
EXTERNAL_TENSOR_MIN_BYTES = 1024
#: offsets in the data file are multiples of this (lets runtimes memory-map each tensor)
EXTERNAL_ALIGNMENT = 4096

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

    ``check`` runs the graph checks of :func:`graphprune.safety.check_model` (a graph listed
    out of topological order is sorted); declared dims of -1 become unknown
    (:func:`graphprune.safety.normalize_declared_dims`); nothing else is changed.
    """
    path = Path(path)
    label = str(path)
    model = _read_proto(path)
    normalize_declared_dims(model, label)
    check_tensors(model, label)
    plan = _plan_external(model, path)
    if check:
        check_versions(model, label)
        check_declared_shapes(model, label)
        check_structure(model, label)
    _EXTERNAL_FILES[path.resolve()] = frozenset(plan)
    if plan and load_external:
        _read_external(plan, path)
    if check:
        run_checker(model, label)
    return model


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


# --------------------------------------------------------------------------- writing
def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(output: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = (),
                      force: bool = False) -> Path:
    """Check an output path before any work is done; returns it as a Path."""
    return _check_output(Path(output), inputs, force, parse=False)


def _check_output(out: Path, inputs: tuple, force: bool, parse: bool) -> Path:
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; give a file name for the output model")
    if out.exists() and not out.is_file():
        raise OutputError(f"{out}: exists and is not a regular file (a device or pipe); refusing to replace it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{out}: directory {parent} does not exist (create it first, or choose another -o)")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{out}: directory {parent} is not writable")
    for inp in inputs:
        if _same_file(out, Path(inp)) and not force:
            raise OutputError(
                f"{out}: is the input model; refusing to overwrite it (choose another -o, or pass --force)")
        if out.exists() and any(_same_file(out, data) for data in external_files_of(inp, parse)):
            raise OutputError(f"{out}: is an external data file of the input model {inp}; refusing to overwrite it")
    return out


def _check_data_target(data_path: Path, out: Path, inputs: tuple, force: bool) -> None:
    """The data file beside the output must not be the input model or (unless forced) its data."""
    if not data_path.exists():
        return
    if not data_path.is_file():
        raise OutputError(f"{out}: {data_path} exists and is not a regular file; cannot write external data there")
    for inp in inputs:
        inp = Path(inp)
        if _same_file(data_path, inp):
            raise OutputError(f"{out}: its external data file {data_path.name} would overwrite the input model")
        replacing_input = force and _same_file(out, inp)
        if not replacing_input and any(_same_file(data_path, d) for d in external_files_of(inp)):
            raise OutputError(
                f"{out}: its external data file {data_path.name} belongs to the input model {inp}; refused "
                "(choose another -o)")


def save_model(model, output: str | os.PathLike, *, inputs: tuple = (),
               force: bool = False, external_data: bool | None = None) -> Path:
    """Write ``model`` (an editable graph or a ModelProto) atomically; big models go to
    ``<output>.data`` beside the output.

    ``external_data`` None decides by size (above :data:`EXTERNAL_DATA_THRESHOLD`). ``model``
    is not modified; its initializers are streamed one at a time (no second copy of the weights).
    """
    import onnx_ir as ir

    from .graph.model import from_proto
    from .graph.write import External, serialized_size

    graph = model if isinstance(model, ir.Model) else from_proto(model)
    out = _check_output(Path(output), inputs, force, parse=True)
    parent = out.parent if str(out.parent) else Path(".")
    if external_data is None:
        external_data = serialized_size(graph) > EXTERNAL_DATA_THRESHOLD
    data_name = out.name + ".data"
    if external_data:
        _check_data_target(parent / data_name, out, inputs, force)
    try:
        tmpdir = Path(tempfile.mkdtemp(prefix=".graphprune-", dir=parent))
    except OSError as exc:
        raise OutputError(f"{out}: cannot create a temporary file in {parent} ({exc.strerror or exc})") from exc
    try:
        tmp_model = tmpdir / out.name
        wrote_data = _write_graph(graph, tmp_model, tmpdir / data_name if external_data else None, data_name)
        if wrote_data:
            os.replace(tmpdir / data_name, parent / data_name)
        os.replace(tmp_model, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    finally:
        for leftover in tmpdir.glob("*"):
            leftover.unlink(missing_ok=True)
        tmpdir.rmdir()
    log.info("wrote %s%s", out, f" (+ {data_name})" if external_data else "")
    return out


def _write_graph(graph, model_path: Path, data_path: Path | None, location: str) -> bool:
    """Stream ``graph`` into ``model_path`` (big tensors into ``data_path`` when given); returns
    whether a data file was written."""
    from .graph.write import External, serialized_size, write_model

    if data_path is None:
        if serialized_size(graph) > PROTOBUF_LIMIT:
            raise OutputError(f"{model_path.name}: the model exceeds the 2 GB protobuf limit; save it with external "
                              "data")
        with open(model_path, "wb") as fh:
            write_model(graph, fh)
            _sync(fh)
        return False
    with open(data_path, "wb") as data:
        external = External(data, location, EXTERNAL_TENSOR_MIN_BYTES, EXTERNAL_ALIGNMENT)
        if serialized_size(graph, external) > PROTOBUF_LIMIT:
            raise OutputError(f"{model_path.name}: even without its initializers the model exceeds 2 GB (huge "
                              "tensors inside nodes or subgraphs); cannot write it")
        with open(model_path, "wb") as fh:
            wrote = write_model(graph, fh, external)
            _sync(fh)
        _sync(data)
    if not wrote:
        data_path.unlink()
    return wrote


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


__all__ = ["EXTERNAL_DATA_THRESHOLD", "PROTOBUF_LIMIT", "check_external_location", "check_output_path",
           "external_files_of", "load_model", "model_byte_size", "save_model"]
