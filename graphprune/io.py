"""Loading and saving ONNX models safely.

* ``load_model`` turns every way a file can be wrong into a :class:`ModelLoadError` /
  :class:`UnsafeModelError` with one readable line, and refuses external-data locations that
  leave the model's directory before reading a byte of them.
* ``save_model`` writes atomically (temporary file in the target directory, then rename), never
  overwrites the input unless forced, and switches to external data above the 2 GB protobuf
  limit.
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import onnx
from google.protobuf.message import DecodeError
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from .errors import ModelLoadError, OutputError, UnsafeModelError

log = logging.getLogger(__name__)

PROTOBUF_LIMIT = 2**31 - 1
#: the largest single tensor graphprune agrees to allocate while loading (elements)
MAX_TENSOR_ELEMENTS = 2**34

_ELEMENT_SIZE = {
    onnx.TensorProto.FLOAT: 4, onnx.TensorProto.DOUBLE: 8, onnx.TensorProto.FLOAT16: 2,
    onnx.TensorProto.BFLOAT16: 2, onnx.TensorProto.INT8: 1, onnx.TensorProto.UINT8: 1,
    onnx.TensorProto.INT16: 2, onnx.TensorProto.UINT16: 2, onnx.TensorProto.INT32: 4,
    onnx.TensorProto.UINT32: 4, onnx.TensorProto.INT64: 8, onnx.TensorProto.UINT64: 8,
    onnx.TensorProto.BOOL: 1,
}


def _all_tensors(model: onnx.ModelProto):
    """Every TensorProto in the model, including Constant attributes and subgraphs."""
    stack = [model.graph]
    while stack:
        graph = stack.pop()
        yield from graph.initializer
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors
                if attr.HasField("g"):
                    stack.append(attr.g)
                stack.extend(attr.graphs)


def _read_proto(path: Path) -> onnx.ModelProto:
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path}: is a directory, expected an .onnx file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror})") from exc
    if not data:
        raise ModelLoadError(f"{path}: file is empty")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: not an ONNX model (protobuf parse failed: truncated or corrupted file?)") from exc
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise ModelLoadError(f"{path}: not an ONNX model (no graph found)")
    return model


def _check_external_location(base: Path, location: str, tensor_name: str) -> Path:
    """Resolve an external-data location, refusing anything outside ``base``."""
    if not location:
        raise UnsafeModelError(f"tensor {tensor_name!r}: external data has no location")
    loc = Path(location)
    if loc.is_absolute() or location.startswith(("/", "\\")) or (len(location) > 1 and location[1] == ":"):
        raise UnsafeModelError(
            f"tensor {tensor_name!r}: external data location {location!r} is absolute; refused "
            "(only files inside the model's directory are read)")
    if ".." in loc.parts:
        raise UnsafeModelError(
            f"tensor {tensor_name!r}: external data location {location!r} leaves the model's directory; refused")
    base_real = base.resolve()
    target = (base / loc).resolve()
    if base_real != target and base_real not in target.parents:
        raise UnsafeModelError(
            f"tensor {tensor_name!r}: external data location {location!r} resolves outside the model's "
            "directory (symbolic link?); refused")
    return target


def _check_sizes(model: onnx.ModelProto, path: Path) -> None:
    """Refuse tensors whose declared size is absurd or disagrees with their data."""
    for tensor in _all_tensors(model):
        count = 1
        for dim in tensor.dims:
            if dim < 0:
                raise ModelLoadError(f"{path}: tensor {tensor.name!r} has a negative dimension {dim}")
            count *= dim
        if count > MAX_TENSOR_ELEMENTS:
            raise UnsafeModelError(
                f"{path}: tensor {tensor.name!r} declares {count} elements (more than {MAX_TENSOR_ELEMENTS}); refused")
        if uses_external_data(tensor) or not tensor.HasField("raw_data"):
            continue
        size = _ELEMENT_SIZE.get(tensor.data_type)
        if size is not None and len(tensor.raw_data) != count * size:
            raise ModelLoadError(
                f"{path}: tensor {tensor.name!r} declares shape {list(tensor.dims)} but holds "
                f"{len(tensor.raw_data)} bytes (corrupted file?)")


def load_model(path: str | os.PathLike, load_external: bool = True) -> onnx.ModelProto:
    """Load an ONNX model, with its external data, refusing unsafe or broken files."""
    path = Path(path)
    model = _read_proto(path)
    _check_sizes(model, path)
    base = path.parent
    external = [t for t in _all_tensors(model) if uses_external_data(t)]
    for tensor in external:
        info = ExternalDataInfo(tensor)
        target = _check_external_location(base, info.location, tensor.name)
        if not target.is_file():
            raise ModelLoadError(
                f"{path}: external data file {info.location!r} for tensor {tensor.name!r} is missing")
        file_size = target.stat().st_size
        offset = info.offset or 0
        length = info.length if info.length is not None else file_size - offset
        size = _ELEMENT_SIZE.get(tensor.data_type)
        if size is not None and info.length is None:
            count = 1
            for d in tensor.dims:
                count *= d
            length = count * size
        if offset + length > file_size:
            raise ModelLoadError(
                f"{path}: external data for tensor {tensor.name!r} needs bytes {offset}..{offset + length} "
                f"of {info.location!r}, which has only {file_size} (truncated?)")
    if external and load_external:
        for tensor in external:
            _load_one_external(tensor, base)
    return model


def _load_one_external(tensor: onnx.TensorProto, base: Path) -> None:
    info = ExternalDataInfo(tensor)
    target = _check_external_location(base, info.location, tensor.name)
    with open(target, "rb") as fh:
        fh.seek(info.offset or 0)
        if info.length is not None:
            data = fh.read(info.length)
        else:
            data = fh.read()
    tensor.raw_data = data
    del tensor.external_data[:]
    tensor.data_location = onnx.TensorProto.DEFAULT


def model_byte_size(model: onnx.ModelProto) -> int:
    """Size of the serialized model (without materialising huge byte strings twice)."""
    return model.ByteSize()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(output: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = (),
                      force: bool = False) -> Path:
    """Check an output path before any work is done; returns it as a Path."""
    out = Path(output)
    if out.exists() and out.is_dir():
        raise OutputError(f"{out}: is a directory; give a file name for the output model")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{out}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{out}: directory {parent} is not writable")
    for inp in inputs:
        if _same_file(out, Path(inp)) and not force:
            raise OutputError(
                f"{out}: is the input model; refusing to overwrite it (choose another -o, or pass --force)")
    return out


def save_model(model: onnx.ModelProto, output: str | os.PathLike, *, inputs: tuple = (),
               force: bool = False, external_data: bool | None = None) -> Path:
    """Write ``model`` atomically; large models go to ``<name>.data`` beside the output."""
    out = check_output_path(output, inputs, force)
    parent = out.parent if str(out.parent) else Path(".")
    if external_data is None:
        external_data = model_byte_size(model) > PROTOBUF_LIMIT - 2**20
    data_name = out.name + ".data"
    if external_data:
        for inp in inputs:
            inp_data = Path(inp).parent / (Path(inp).name + ".data")
            if _same_file(parent / data_name, inp_data):
                raise OutputError(f"{out}: external data file {data_name} belongs to the input model; refused")
    tmpdir = Path(tempfile.mkdtemp(prefix=".graphprune-", dir=parent))
    try:
        tmp_model = tmpdir / out.name
        if external_data:
            onnx.save_model(model, str(tmp_model), save_as_external_data=True, all_tensors_to_one_file=True,
                            location=data_name, size_threshold=1024)
            os.replace(tmpdir / data_name, parent / data_name)
        else:
            with open(tmp_model, "wb") as fh:
                fh.write(model.SerializeToString())
        os.replace(tmp_model, out)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write ({exc.strerror or exc})") from exc
    finally:
        for leftover in tmpdir.glob("*"):
            leftover.unlink(missing_ok=True)
        tmpdir.rmdir()
    log.info("wrote %s", out)
    return out
