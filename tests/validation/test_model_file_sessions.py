"""A ModelFile's session: onnxruntime reads the file while it is as read, the loaded model otherwise;
session options for threads that do not spin."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from graphprune.io import ModelFile, read_model
from graphprune.validation.runner import make_session, session_options
from tests.helpers.models import small_cnn

FEED = {"x": np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)}


def _outputs(model) -> np.ndarray:
    return make_session(model, exact=True).run(None, FEED)[0]


def _file_of(tmp_path, model) -> ModelFile:
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    return read_model(path)[1]


def test_onnxruntime_reads_the_file_while_it_is_unchanged(tmp_path):
    file = _file_of(tmp_path, small_cnn(seed=0))
    other = small_cnn(seed=1)
    assert not np.allclose(_outputs(file.proto), _outputs(other))
    # the same file, stamped as read, with another model in memory: the session computes the file's
    as_file = ModelFile(file.path, other, file.stamps)
    np.testing.assert_array_equal(_outputs(as_file), _outputs(file.proto))


def test_a_changed_file_gives_way_to_the_loaded_model(tmp_path):
    file = _file_of(tmp_path, small_cnn(seed=0))
    expected = _outputs(file.proto)
    onnx.save(small_cnn(seed=1), str(file.path))
    assert not file.unchanged()
    np.testing.assert_array_equal(_outputs(file), expected)


def test_a_file_onnxruntime_refuses_gives_way_to_the_loaded_model(tmp_path):
    file = _file_of(tmp_path, small_cnn(seed=0))
    expected = _outputs(file.proto)
    stat = file.path.stat()
    file.path.write_bytes(b"\xff" * stat.st_size)          # same size and time: the stamp cannot tell
    os.utime(file.path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert file.unchanged()
    np.testing.assert_array_equal(_outputs(file), expected)


def test_threads_that_do_not_spin():
    assert session_options(exact=True, spin=False).get_session_config_entry("session.intra_op.allow_spinning") == "0"
    with pytest.raises(RuntimeError, match="does not have configuration"):   # onnxruntime's default: spin
        session_options(exact=True).get_session_config_entry("session.intra_op.allow_spinning")
    opts = session_options(exact=False, threads=1, spin=False)
    assert opts.intra_op_num_threads == 1 and opts.graph_optimization_level.name == "ORT_ENABLE_ALL"
