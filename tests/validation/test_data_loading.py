"""``load_inputs``: arrays, .npz/.npy files and image folders, with every check they make."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from onnx import TensorProto, helper

from graphprune.errors import DataError, UsageError
from graphprune.validation import load_inputs, validate
from tests.helpers.models import model, small_cnn

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _two_inputs():
    """x [N, 4] float and ids [N, 4] int64."""
    nodes = [helper.make_node("Cast", ["ids"], ["c"], to=F), helper.make_node("Add", ["x", "c"], ["y"])]
    return model(nodes, [("x", F, ["N", 4]), ("ids", I64, ["N", 4])], [("y", F, ["N", 4])])


def _image_model(layout="NCHW", channels=3, hw=(4, 6), batch=1, dtype=F):
    h, w = hw
    dims = [batch, channels, h, w] if layout == "NCHW" else [batch, h, w, channels]
    return model([helper.make_node("Identity", ["img"], ["out"])], [("img", dtype, dims)], [("out", dtype, dims)])


def test_npz_with_input_names(tmp_path):
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    ids = np.ones((2, 4), np.int64)
    np.savez(tmp_path / "d.npz", x=x, ids=ids)
    (feed,) = load_inputs(tmp_path / "d.npz", _two_inputs())
    assert set(feed) == {"x", "ids"}
    assert np.array_equal(feed["x"], x) and feed["ids"].dtype == np.int64


def test_stacked_arrays_become_one_feed_per_sample(tmp_path):
    x = np.arange(24, dtype=np.float32).reshape(3, 2, 4)      # 3 samples of [2, 4]
    ids = np.zeros((3, 2, 4), np.int64)
    np.savez(tmp_path / "d.npz", x=x, ids=ids)
    feeds = load_inputs(tmp_path / "d.npz", _two_inputs())
    assert len(feeds) == 3
    assert [f["x"][0, 0] for f in feeds] == [0.0, 8.0, 16.0]
    assert len(load_inputs(tmp_path / "d.npz", _two_inputs(), limit=2)) == 2


def test_npy_for_a_one_input_model_and_int_data_cast_to_float(tmp_path):
    np.save(tmp_path / "x.npy", np.ones((5, 1, 3, 16, 16), np.int32))
    feeds = load_inputs(tmp_path / "x.npy", small_cnn())
    assert len(feeds) == 5 and feeds[0]["x"].dtype == np.float32 and feeds[0]["x"].shape == (1, 3, 16, 16)


def test_single_unnamed_array_maps_to_the_only_input(tmp_path):
    np.savez(tmp_path / "d.npz", np.zeros((1, 3, 16, 16), np.float32))   # key arr_0
    (feed,) = load_inputs(tmp_path / "d.npz", small_cnn())
    assert list(feed) == ["x"]


def test_list_of_dicts_and_dict():
    feeds = load_inputs([{"x": np.zeros((1, 3, 16, 16))}, {"x": np.ones((1, 3, 16, 16))}], small_cnn())
    assert len(feeds) == 2 and feeds[1]["x"].dtype == np.float32 and feeds[1]["x"].max() == 1.0
    assert len(load_inputs({"x": np.zeros((1, 3, 16, 16))}, small_cnn())) == 1


@pytest.mark.parametrize("arrays,message", [
    ({"x": np.zeros((2, 4), np.float32)}, r"no array for input\(s\) \['ids'\]; it holds \['x'\]"),
    ({"x": np.zeros((2, 5), np.float32), "ids": np.zeros((2, 5), np.int64)},
     r"sample 0: input 'x' axis 1 must be 4, the data has shape \(2, 5\)"),
    ({"x": np.zeros((2, 4), np.float32), "ids": np.zeros((2, 4), np.float32)},
     r"input 'ids' is int64, the data is float32 \(refusing to truncate floats\)"),
    ({"x": np.zeros((4,), np.float32), "ids": np.zeros((2, 4), np.int64)},
     r"array for input 'x' has rank 1; the input has rank 2 \(or 3 for a stack of samples\)"),
    ({"x": np.zeros((3, 2, 4), np.float32), "ids": np.zeros((2, 2, 4), np.int64)},
     r"stacked arrays disagree on the number of samples"),
])
def test_array_mismatches_are_data_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_inputs(tmp_path / "d.npz", _two_inputs())


def test_bad_paths_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no such file or directory"):
        load_inputs(tmp_path / "nope.npz", small_cnn())
    (tmp_path / "d.txt").write_text("1 2 3")
    with pytest.raises(DataError, match=r"unsupported data file \(expected .npz, .npy or a folder of images\)"):
        load_inputs(tmp_path / "d.txt", small_cnn())
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load_inputs(tmp_path / "bad.npz", small_cnn())
    np.save(tmp_path / "x.npy", np.zeros((2, 4), np.float32))
    with pytest.raises(DataError, match=r"a .npy file holds one array, but the model has 2 inputs"):
        load_inputs(tmp_path / "x.npy", _two_inputs())


def test_validate_caps_data_with_samples(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((6, 1, 3, 16, 16), np.float32))
    m = small_cnn()
    assert validate(m, m, data=str(tmp_path / "x.npy"), progress=False).samples == 6
    assert validate(m, m, data=str(tmp_path / "x.npy"), samples=2, progress=False).samples == 2


# ------------------------------------------------------------------------------------ images
def _write_images(folder, colors, size=(6, 4)):
    """One flat-coloured RGB image per colour, named 0.png, 1.png... (size is W x H)."""
    from PIL import Image as image

    folder.mkdir(exist_ok=True)
    for i, rgb in enumerate(colors):
        image.new("RGB", size, tuple(rgb)).save(folder / f"{i}.png")
    return folder


def test_image_folder_is_scaled_normalized_and_laid_out(tmp_path):
    folder = _write_images(tmp_path / "imgs", [(255, 0, 51), (0, 102, 255)])
    mean, std = [0.5, 0.25, 0.0], [0.5, 0.5, 2.0]
    feeds = load_inputs(folder, _image_model(), mean=mean, std=std)
    assert len(feeds) == 2
    img = feeds[0]["img"]
    assert img.shape == (1, 3, 4, 6) and img.dtype == np.float32
    expected = (np.array([1.0, 0.0, 0.2]) - mean) / std                 # (x/255 - mean) / std per channel
    np.testing.assert_allclose(img[0, :, 0, 0], expected, rtol=1e-6)
    assert np.all(img[0] == img[0, :, :1, :1])                           # flat colour everywhere


def test_image_folder_bgr_nhwc(tmp_path):
    folder = _write_images(tmp_path / "imgs", [(255, 0, 51)])
    (feed,) = load_inputs(folder, _image_model(layout="NHWC"), layout="nhwc", channel_order="BGR")
    assert feed["img"].shape == (1, 4, 6, 3)
    np.testing.assert_allclose(feed["img"][0, 0, 0], [0.2, 0.0, 1.0], rtol=1e-6)


def test_image_folder_resizes_batches_and_skips_other_files(tmp_path):
    folder = _write_images(tmp_path / "imgs", [(10, 10, 10)] * 5, size=(30, 20))
    (folder / "notes.txt").write_text("not an image")
    feeds = load_inputs(folder, _image_model(batch=2))
    assert len(feeds) == 2                                               # 5 images, batches of 2
    assert feeds[0]["img"].shape == (2, 3, 4, 6)


def test_grey_models_and_raw_uint8_inputs(tmp_path):
    folder = _write_images(tmp_path / "imgs", [(200, 200, 200)])
    (grey,) = load_inputs(folder, _image_model(channels=1))
    assert grey["img"].shape == (1, 1, 4, 6)
    (raw,) = load_inputs(folder, _image_model(dtype=TensorProto.UINT8))
    assert raw["img"].dtype == np.uint8 and int(raw["img"].max()) == 200


def test_dynamic_image_size_needs_size(tmp_path):
    folder = _write_images(tmp_path / "imgs", [(0, 0, 0)])
    dyn = model([helper.make_node("Identity", ["img"], ["out"])], [("img", F, ["N", 3, "H", "W"])],
                [("out", F, ["N", 3, "H", "W"])])
    with pytest.raises(UsageError, match="dynamic height/width; give the image size with --size"):
        load_inputs(folder, dyn)
    (feed,) = load_inputs(folder, dyn, size=(8, 10))
    assert feed["img"].shape == (1, 3, 8, 10)


@pytest.mark.parametrize("kwargs,error,message", [
    ({"layout": "CHWN"}, UsageError, "layout must be one of"),
    ({"channel_order": "GRB"}, UsageError, "channel order must be one of"),
    ({"std": [0.0]}, UsageError, "std must not contain 0"),
    ({"mean": [0.1, 0.2]}, UsageError, r"mean has 2 values; the input has 3 channel\(s\)"),
    ({"layout": "NHWC"}, DataError, r"input 'img' has 6 channels on the NHWC channel axis"),
])
def test_image_option_errors(tmp_path, kwargs, error, message):
    folder = _write_images(tmp_path / "imgs", [(0, 0, 0)])
    with pytest.raises(error, match=message):
        load_inputs(folder, _image_model(), **kwargs)


def test_empty_folder_and_broken_image(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_inputs(tmp_path / "empty", _image_model())
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"a.png: cannot read image"):
        load_inputs(tmp_path / "broken", _image_model())


def test_missing_pillow_is_a_clear_data_error(tmp_path, monkeypatch):
    folder = _write_images(tmp_path / "imgs", [(0, 0, 0)])
    monkeypatch.setitem(sys.modules, "PIL", None)                     # import PIL now raises ImportError
    with pytest.raises(DataError, match=r"needs pillow: pip install 'graphprune\[images\]'"):
        load_inputs(folder, _image_model())
