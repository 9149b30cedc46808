"""onnxruntime sessions on the CPU provider, with ORT's errors turned into one-line GraphPruneErrors.

``exact=True`` (validation) disables every ORT graph optimization so the session computes what
the graph says, node by node; ``exact=False`` (latency) enables all of them, as a deployment would.
"""
from __future__ import annotations

import logging
import re
import sys
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ..errors import DataError, InvalidModelError
from ..graph.detached import STUB_LOCATION, Detached, detach_proto
from ..io import PROTOBUF_LIMIT, ModelFile, model_byte_size

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)


def _onnxruntime():
    """onnxruntime, imported on the first session (0.05 s that commands without checks never pay)."""
    import onnxruntime

    return onnxruntime

def session_options(*, exact: bool, threads: int | None = None, spin: bool = True) -> ort.SessionOptions:
    """``threads``: onnxruntime's threads for one run (None: its default, every core); ``spin``:
    False makes them sleep between runs and ops instead of busy-waiting, so that a session sharing
    the cores with others takes a core only while it computes."""
    ort = _onnxruntime()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_DISABLE_ALL if exact
                                     else ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    opts.log_severity_level = 4  # errors reach the user as one line through the raised exception
    if not spin:
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")
_SOURCE_LOCATION = re.compile(r"\S+\.(?:cc|h|cpp):\d+ .*?\) ")
_IR_LIMIT = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")


def first_line(exc: Exception) -> str:
    """ORT's message without its error-code prefix and C++ source location."""
    text = str(exc).strip()
    text = text.splitlines()[0] if text else type(exc).__name__
    return _SOURCE_LOCATION.sub("", _ORT_PREFIX.sub("", text))


def _serialized(model: onnx.ModelProto | bytes, ir_version: int | None) -> bytes:
    """The model's bytes, with ``ir_version`` lowered if given (the proto itself is left as is)."""
    if isinstance(model, bytes):
        if ir_version is None:
            return model
        model = onnx.ModelProto.FromString(model)  # a retry only: a copy of its own to lower
    if ir_version is None:
        return model.SerializeToString()
    original = model.ir_version
    model.ir_version = ir_version
    try:
        return model.SerializeToString()
    finally:
        model.ir_version = original


def _create(model: onnx.ModelProto | Detached | ModelFile | bytes, exact: bool, threads: int | None,
            ir_version: int | None, spin: bool = True) -> ort.InferenceSession:
    opts = session_options(exact=exact, threads=threads, spin=spin)
    if isinstance(model, ModelFile):
        return _create_from_file(model, opts, ir_version)
    if isinstance(model, Detached):
        return _create_detached(model, opts, ir_version, in_place=exact)
    if isinstance(model, bytes) or model_byte_size(model) < PROTOBUF_LIMIT - 2**20:
        return _onnxruntime().InferenceSession(_serialized(model, ir_version), opts, providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory(prefix="graphprune-ort-") as tmp:
        path = Path(tmp) / "model.onnx"
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        if ir_version is not None:
            copy.ir_version = ir_version
        onnx.save_model(copy, str(path), save_as_external_data=True, location="model.onnx.data")
        return _onnxruntime().InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _create_from_file(model: ModelFile, opts: ort.SessionOptions, ir_version: int | None) -> ort.InferenceSession:
    """onnxruntime reads the file itself; from the ModelProto (detached) if the file changed since it
    was read, for a lowered IR version, or if onnxruntime refuses the file (the ModelProto decides)."""
    if ir_version is None and model.unchanged():
        try:
            return _onnxruntime().InferenceSession(str(model.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception zoo; the proto route reports
            log.debug("%s: onnxruntime refused the file (%s); the loaded model is given instead",
                      model.path, first_line(exc))
    return _create_detached(detach_proto(model.proto), opts, ir_version)


def _create_detached(model: Detached, opts: ort.SessionOptions, ir_version: int | None,
                     in_place: bool = False) -> ort.InferenceSession:
    """A session of the skeleton, its stub initializers given as the arrays themselves (not copied
    into protobuf bytes); the session keeps the arrays alive, as onnxruntime reads their memory.
    ``in_place`` (only for a session without graph optimizations): see :func:`_weights_in_place`,
    which is not taken for a skeleton that refers to real data files (they would be looked for
    beside its empty one)."""
    ort = _onnxruntime()
    model = model.filled()
    names = list(model.arrays)
    values = [ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(model.arrays[n])) for n in names]
    if names and in_place and not model.refers_to_files():
        session = _weights_in_place(model, names, values, opts, ir_version)
    else:
        if names:
            opts.add_external_initializers(names, values)
        session = ort.InferenceSession(_serialized(model.proto, ir_version), opts, providers=["CPUExecutionProvider"])
    session._graphprune_weights = (model.arrays, values)
    return session


def _weights_in_place(model: Detached, names: list[str], values: list, opts: ort.SessionOptions,
                      ir_version: int | None) -> ort.InferenceSession:
    """A session that computes with the arrays' own memory as its weights (``add_initializer``):
    onnxruntime copies every external initializer it is given, and this saves that copy (ResNet-50's
    oracle: 98 MB and 25k page faults; the whole default prune 0.93x). onnxruntime insists that
    the stubs' external-data file exists, though it never reads it: they name one empty sparse file
    in a temporary directory, removed once the session is made.

    Never with graph optimizations: onnxruntime would fold constants from that file's zeros before
    it puts the arrays in (``tests/validation/test_weights_in_place.py`` keeps optimized sessions off
    this route)."""
    with tempfile.TemporaryDirectory(prefix="graphprune-ort-") as tmp:
        with open(Path(tmp) / STUB_LOCATION, "wb") as fh:
            fh.truncate(max(int(model.arrays[n].nbytes) for n in names))
        opts.add_session_config_entry("session.model_external_initializers_file_folder_path", tmp)
        for name, value in zip(names, values):
            opts.add_initializer(name, value)
        return _onnxruntime().InferenceSession(_serialized(model.proto, ir_version), opts,
                                               providers=["CPUExecutionProvider"])


def make_session(model: onnx.ModelProto | Detached | ModelFile | bytes, *, exact: bool = True,
                 threads: int | None = None, spin: bool = True, label: str = "model") -> ort.InferenceSession:
    """An ORT CPU session for ``model``; models above the protobuf limit go through a temporary file.
    A :class:`~graphprune.graph.detached.Detached` model's arrays go to onnxruntime as they are;
    a :class:`~graphprune.io.ModelFile` is read by onnxruntime; ``bytes`` are a serialized model
    (below the protobuf limit). ``threads`` and ``spin``: see :func:`session_options`.

    A model stamped with a newer IR version than this onnxruntime reads (onnx's helpers stamp
    the newest) is retried once with the IR version ORT supports, with a log line.
    """
    try:
        try:
            return _create(model, exact, threads, None, spin)
        except Exception as exc:  # noqa: BLE001 - ORT raises its own exception zoo
            limit = _IR_LIMIT.search(str(exc))
            if not limit:
                raise
            log.info("%s: IR version %s is newer than onnxruntime's %s; running it as IR %s",
                     label, limit.group(1), limit.group(2), limit.group(2))
            return _create(model, exact, threads, int(limit.group(2)), spin)
    except Exception as exc:  # noqa: BLE001 - all mean the same here
        raise InvalidModelError(f"{label}: onnxruntime cannot load it: {first_line(exc)}") from exc


def on_worker(name: str, fn, *args) -> Future:
    """``fn(*args)`` on a new worker thread named ``name`` (the CLI recognises graphprune's workers by
    their ``graphprune-`` prefix), which ends with it; its result in a Future."""
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
    future = pool.submit(fn, *args)
    pool.shutdown(wait=False)
    return future


class PendingSession:
    """A session being made on a worker thread (onnxruntime releases the GIL while it builds and
    runs one, so the caller's own work goes on beside it), with the ModelProto whose graph inputs
    feed it. With ``feeds``, the worker also runs them (:meth:`outputs`); ``feeds_key`` says how
    they were made, so that a caller can tell they are the ones it would make. ``threads`` and
    ``spin``: onnxruntime's threads for the session (see :func:`session_options`).

    A ModelProto is detached on the worker (:func:`~graphprune.graph.detached.detach_proto`): its
    weights are read there, not serialized; a :class:`~graphprune.io.ModelFile` is read by
    onnxruntime. :meth:`result` waits, and raises what making it raised."""

    def __init__(self, model: onnx.ModelProto | Detached | ModelFile, *, exact: bool, label: str,
                 feeds: list[dict] | None = None, feeds_key: tuple | None = None, threads: int | None = None,
                 spin: bool = True):
        self.model = model.proto if isinstance(model, (Detached, ModelFile)) else model
        self.label, self.feeds, self.feeds_key = label, feeds, feeds_key
        self._future = on_worker("graphprune-session", _make_and_run, model, exact, label, feeds or [], threads,
                                 spin)

    def result(self) -> ort.InferenceSession:
        return self._future.result()[0]

    def outputs(self) -> list[dict[str, np.ndarray]]:
        """The outputs of every feed given, in order."""
        return self._future.result()[1]


def _make_and_run(model: onnx.ModelProto | Detached | ModelFile, exact: bool, label: str, feeds: list[dict],
                  threads: int | None, spin: bool):
    if isinstance(model, onnx.ModelProto):
        model = detach_proto(model)
    session = make_session(model, exact=exact, threads=threads, spin=spin, label=label)
    return session, [run_session(session, feed, label=label, sample=i) for i, feed in enumerate(feeds)]


def is_session(value) -> bool:
    """True for an onnxruntime session, or one that remembers its runs (without importing
    onnxruntime when none was made)."""
    from .remembered import RememberedRuns

    ort = sys.modules.get("onnxruntime")
    return isinstance(value, RememberedRuns) or (ort is not None and isinstance(value, ort.InferenceSession))


def output_names(sess: ort.InferenceSession) -> list[str]:
    return [o.name for o in sess.get_outputs()]


def input_names(sess: ort.InferenceSession) -> list[str]:
    return [i.name for i in sess.get_inputs()]


def run_session(sess: ort.InferenceSession, feed: dict[str, np.ndarray], *, label: str = "model",
                sample: int | None = None) -> dict[str, np.ndarray]:
    """Run one feed; returns output name -> array. Missing inputs and ORT failures raise one line."""
    needed = input_names(sess)
    missing = [n for n in needed if n not in feed]
    if missing:
        raise DataError(f"{label}: no data for input(s) {missing}; the data provides {sorted(feed)}")
    names = output_names(sess)
    try:
        values = sess.run(names, {n: feed[n] for n in needed})
    except Exception as exc:  # noqa: BLE001 - see make_session
        where = f" on sample {sample}" if sample is not None else ""
        shapes = ", ".join(f"{n}:{'x'.join(map(str, np.shape(feed[n])))}" for n in needed)
        raise InvalidModelError(f"{label}: onnxruntime failed{where} (inputs {shapes}): {first_line(exc)}") from exc
    return dict(zip(names, values))
