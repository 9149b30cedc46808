"""Samples stacked along the batch axis of a fixed-batch input are split, for --data and --calib alike."""
from __future__ import annotations

import logging

import numpy as np
import pytest
from onnx import TensorProto, helper

from graphprune.calibration.collect import calibration_feeds
from graphprune.errors import DataError
from graphprune.validation import load_inputs, validate
from tests.helpers.models import model

F = TensorProto.FLOAT


def _image_model(batch: int = 1, hw: int = 4):
    dims = [batch, 3, hw, hw]
    return model([helper.make_node("Relu", ["img"], ["out"])], [("img", F, dims)], [("out", F, dims)])


def _images(count: int, hw: int = 4) -> np.ndarray:
    return np.arange(count * 3 * hw * hw, dtype=np.float32).reshape(count, 3, hw, hw)


def test_n_images_for_a_batch_1_input_become_n_samples(tmp_path, caplog):
    images = _images(5)
    np.savez(tmp_path / "d.npz", img=images)
    with caplog.at_level(logging.INFO, logger="graphprune.validation.data_files"):
        feeds = load_inputs(tmp_path / "d.npz", _image_model())
    assert len(feeds) == 5
    assert all(f["img"].shape == (1, 3, 4, 4) and np.array_equal(f["img"][0], images[i]) for i, f in enumerate(feeds))
    lines = [r.getMessage() for r in caplog.records if "split" in r.getMessage()]
    assert lines == [f"{tmp_path / 'd.npz'}: input 'img' has batch 1 and its array holds 5 along axis 0: "
                     "split into 5 samples"]


def test_stack_with_the_batch_axis_kept_still_works(tmp_path):
    images = _images(3)
    np.save(tmp_path / "x.npy", images[:, None])                 # (3, 1, 3, 4, 4)
    feeds = load_inputs(tmp_path / "x.npy", _image_model())
    assert [f["img"].shape for f in feeds] == [(1, 3, 4, 4)] * 3
    assert np.array_equal(feeds[2]["img"][0], images[2])


def test_fixed_batch_2_takes_two_images_per_sample_and_refuses_a_remainder(tmp_path):
    images = _images(6)
    feeds = load_inputs({"img": images}, _image_model(batch=2))
    assert [f["img"].shape for f in feeds] == [(2, 3, 4, 4)] * 3
    assert np.array_equal(feeds[1]["img"], images[2:4])
    with pytest.raises(DataError, match=r"sample 0: input 'img' axis 0 must be 2, the data has shape \(5, 3, 4, 4\)"):
        load_inputs({"img": _images(5)}, _image_model(batch=2))


def test_calibration_data_is_split_the_same_way(tmp_path):
    np.savez(tmp_path / "calib.npz", img=_images(4))
    feeds = list(calibration_feeds(tmp_path / "calib.npz", _image_model(), limit=None))
    assert [f["img"].shape for f in feeds] == [(1, 3, 4, 4)] * 4
    assert len(list(calibration_feeds(tmp_path / "calib.npz", _image_model(), limit=3))) == 3


def test_validate_runs_one_sample_per_image(tmp_path):
    np.savez(tmp_path / "d.npz", img=_images(4) - 50.0)
    report = validate(_image_model(), _image_model(), data=tmp_path / "d.npz", progress=False)
    assert report.passed and report.samples == 4 and report.output("out").shape == (1, 3, 4, 4)
    assert report.inputs.shapes == {"img": (1, 3, 4, 4)} and report.inputs.source == "data"


def test_other_inputs_follow_the_split_and_counts_must_agree():
    nodes = [helper.make_node("Mul", ["img", "gain"], ["out"])]
    m = model(nodes, [("img", F, [1, 3, 4, 4]), ("gain", F, [1, 1, 1, 1])], [("out", F, [1, 3, 4, 4])])
    gains = np.arange(3, dtype=np.float32).reshape(3, 1, 1, 1)
    feeds = load_inputs({"img": _images(3), "gain": gains}, m)
    assert [float(f["gain"].ravel()[0]) for f in feeds] == [0.0, 1.0, 2.0]
    shared_gain = load_inputs({"img": _images(3), "gain": np.ones((1, 1, 1, 1), np.float32)}, m)
    assert len(shared_gain) == 3 and all(f["gain"].shape == (1, 1, 1, 1) for f in shared_gain)
    with pytest.raises(DataError, match=r"stacked arrays disagree on the number of samples: \{'img': 3, 'gain': 2\}"):
        load_inputs({"img": _images(3), "gain": gains[:2]}, m)
