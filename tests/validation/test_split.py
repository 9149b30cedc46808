"""The calibration / held-out split: seeded, disjoint, independent of --calib-samples, streamed."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graphprune.errors import UsageError
from graphprune.validation.split import DataSplit, held_out_indices
from tests.helpers.budget import calibration_arrays, planted_chain


def _ids(feeds) -> list[int]:
    """Sample k of calibration_arrays has x[0, 0] == the k-th value of the stacked array."""
    first = calibration_arrays(40)["x"][:, 0, 0]
    return [int(np.flatnonzero(first == f["x"][0, 0])[0]) for f in feeds]


def test_a_quarter_is_held_out_by_a_seeded_permutation():
    split = DataSplit(calibration_arrays(40), planted_chain(), eval_split=0.25, seed=0)
    expected = sorted(int(i) for i in np.random.default_rng(0).permutation(40)[:10])
    assert split.total == 40 and sorted(split.held) == expected
    held, calib = _ids(split.held_out), _ids(split.calibration())
    assert held == expected
    assert calib == [i for i in range(40) if i not in expected]  # the rest, in data order
    assert split.calibration_count == 30 and split.check_data() is split.held_out
    assert "10 of 40 held out with --eval-split 0.25, seed 0" in split.label


def test_the_split_depends_on_the_seed_only_and_not_on_the_calibration_limit():
    data, model = calibration_arrays(40), planted_chain()
    a = DataSplit(data, model, eval_split=0.25, seed=0)
    b = DataSplit(data, model, eval_split=0.25, seed=0, calib_limit=5)
    c = DataSplit(data, model, eval_split=0.25, seed=1)
    assert a.held == b.held and a.held != c.held
    assert _ids(b.calibration()) == _ids(a.calibration())[:5] and b.calibration_count == 5
    assert _ids(b.search_feeds(3)) == _ids(a.calibration())[:3]


def test_edge_sizes():
    assert held_out_indices(2, 0.25, 0) == held_out_indices(2, 0.01, 0) and len(held_out_indices(2, 0.25, 0)) == 1
    assert len(held_out_indices(10, 0.95, 0)) == 9  # at least one sample calibrates
    assert held_out_indices(10, 0.0, 0) == frozenset()
    with pytest.raises(UsageError, match="--eval-split 0.25: the calibration data has 1 sample"):
        held_out_indices(1, 0.25, 0)


def test_eval_split_zero_checks_on_calibration_samples_and_says_so():
    split = DataSplit(calibration_arrays(6), planted_chain(), eval_split=0.0)
    assert split.held == frozenset() and _ids(split.held_out) == list(range(6))
    assert "none held out" in split.label


def test_the_search_repairs_on_calibration_samples_it_does_not_measure_on():
    split = DataSplit(calibration_arrays(40), planted_chain(), eval_split=0.25)
    calibration = _ids(split.calibration())
    assert _ids(split.search_feeds(8)) == calibration[:8]
    assert _ids(split.repair_feeds(8)) == calibration[8:] and split.notes == []
    assert _ids(split.repair_feeds(30)) == calibration[:30]  # nothing left: the measured ones, said so
    assert split.notes == ["the search's repairs are fitted on the 30 calibration samples it measures on (no other "
                           "calibration sample is left): its drift estimates are optimistic, the held-out check "
                           "decides"]


def test_the_default_split_holds_a_quarter_out_but_never_the_only_sample():
    default = DataSplit(calibration_arrays(8), planted_chain(), eval_split=None)
    assert default.eval_split == 0.25 and len(default.held) == 2 and default.notes == []
    single = DataSplit(calibration_arrays(1), planted_chain(), eval_split=None)
    assert single.eval_split == 0.0 and single.held == frozenset() and single.calibration_count == 1
    assert single.notes == ["given arrays has a single sample: nothing held out, the checks run on it "
                            "(give more samples or --data PATH for a held-out check)"]
    assert single.label == "calibration samples of given arrays (a single sample: none held out)"
    with pytest.raises(UsageError, match="--eval-split 0.25: the calibration data has 1 sample"):
        DataSplit(calibration_arrays(1), planted_chain(), eval_split=0.25)  # asked for explicitly


def test_with_data_every_calibration_sample_calibrates_and_data_is_checked():
    data = calibration_arrays(3, seed=9)
    split = DataSplit(calibration_arrays(8), planted_chain(), eval_split=0.25, data=data)
    assert split.held == frozenset() and len(list(split.calibration())) == 8
    assert split.check_data() is data and split.held_out is None


def test_image_folders_are_counted_without_decoding(tmp_path):
    from onnx import TensorProto, helper

    for i in range(5):
        Image.fromarray(np.full((6, 6, 3), 40 * i, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    split = DataSplit(str(tmp_path), model, eval_split=0.4, seed=3)
    assert split.total == 5 and len(split.held) == 2
    levels = sorted(round(float(f["x"][0, 0, 0, 0]) * 255) for f in split.held_out)
    assert levels == sorted(40 * i for i in split.held)  # file i is 40 * i grey: the held-out files
