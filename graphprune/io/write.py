"""Writing ONNX files safely.

:func:`save_model` writes atomically (a temporary directory beside the output, then
``os.replace``), never overwrites the input (or the input's data files) unless ``--force`` names
the input itself, and switches to external data (``<output>.data``, written beside the output)
when the model would not fit the 2 GB protobuf limit. The model passed in is never modified, and
its weights are streamed to the file one tensor at a time (:mod:`graphprune.graph.write`).
"""
from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from ..errors import OutputError, UsageError
from .read import PROTOBUF_LIMIT, external_files_of

log = logging.getLogger(__name__)

#: models whose serialized size would exceed this are saved with external data (tests lower it)
EXTERNAL_DATA_THRESHOLD = PROTOBUF_LIMIT - 2**20
#: in a model saved with external data, tensors of at least this many bytes go to the data file
EXTERNAL_TENSOR_MIN_BYTES = 1024
#: offsets in the data file are multiples of this (lets runtimes memory-map each tensor)
EXTERNAL_ALIGNMENT = 4096

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

    from ..graph.model import from_proto
    from ..graph.write import serialized_size

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
    from ..graph.write import External, serialized_size, write_model

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
