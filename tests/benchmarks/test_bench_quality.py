"""benchmarks/bench_quality.py: its drift has known answers, its data are disjoint, one small run gives the table."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_quality as bq  # noqa: E402
import quality_data as qd  # noqa: E402


def test_drift_known_answers():
    reference = [[np.array([1.0, 0.0]), np.array([0.0, 3.0])], [[2.0, 2.0], [1.0, 1.0]]]
    reference = [[np.asarray(o, float) for o in sample] for sample in reference]
    rotated = [[np.array([1.0, 1.0]), np.array([0.0, 1.0])], [np.array([1.0, 1.0]), np.array([1.0, 1.0])]]
    # first output: cosines 1/sqrt(2) and 1 -> mean 0.8536; second output: 1 and 1: the worst output counts
    assert qd.drift("cosine", reference, rotated) == pytest.approx(1 - (2 ** -0.5 + 1) / 2)
    assert qd.drift("cosine", reference, reference) == pytest.approx(0.0, abs=1e-12)
    logits = [[np.array([[0.1, 0.9]])], [np.array([[0.8, 0.2]])], [np.array([[0.3, 0.7]])], [np.array([[0.6, 0.4]])]]
    flipped = [logits[0], [np.array([[0.1, 0.9]])], logits[2], logits[3]]
    assert qd.drift("top1", logits, flipped) == pytest.approx(0.25)


def test_calibration_and_evaluation_data_are_disjoint_and_seeded():
    assert not set(qd.CALIB_PHOTOS) & set(qd.EVAL_PHOTOS)
    first, again = qd.crops(3), qd.crops(3)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert all(c.ndim == 3 and c.shape[2] == 3 and c.shape[0] == c.shape[1] for c in first)
    calib, evaluation = qd.MODELS["mnist-cntk"].calibration(40), qd.MODELS["mnist-cntk"].evaluation(40)
    seen = {f["Input3"].tobytes() for f in calib}
    assert len(evaluation) == 40 and not any(f["Input3"].tobytes() in seen for f in evaluation)
    assert evaluation[0]["Input3"].shape == (1, 1, 28, 28) and 0 <= evaluation[0]["Input3"].min() <= 255
    with pytest.raises(ValueError, match="evaluation digits start at 1000"):
        qd.MODELS["mnist-cntk"].calibration(qd.DIGIT_EVAL_START + 1)


def test_one_column_on_mnist_prints_the_table(capsys):
    assert qd.MODELS["mnist-cntk"].path.is_file(), f"third-party model {qd.MODELS['mnist-cntk'].path} not found"
    assert bq.main(["--models", "mnist-cntk", "--columns", "l2", "--calib", "1", "--eval", "2"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| mnist-cntk |")]
    assert [r.split("|")[2].strip() for r in rows] == ["top-1 ≥ 99%", "top-1 ≥ 95%"]
    for row in rows:
        for cell in row.strip("|").split("|")[2:]:
            removed, speedup = cell.split()
            assert 0 <= float(removed.rstrip("%")) < 100 and float(speedup.rstrip("x")) > 0
    assert "`python benchmarks/bench_quality.py --models mnist-cntk" in out


def test_make_digits_writes_the_tour_inputs(tmp_path, capsys):
    import make_digits

    out = tmp_path / "held-out.npz"
    assert make_digits.main([str(out), "--start", "1000", "--count", "5"]) == 0
    images = np.load(out)["Input3"]
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32
    assert np.array_equal(images[:, 0], np.stack(qd.digits(1000, 5)))
    assert 0 <= images.min() and images.max() <= 255
    with pytest.raises(SystemExit):
        make_digits.main([str(tmp_path / "x.npz"), "--start", "1795", "--count", "5"])
    assert not (tmp_path / "x.npz").exists()


def test_a_search_beyond_the_budget_on_the_evaluation_samples_is_marked_and_never_counts():
    within, beyond = bq.Point(0.1, 0.12, 0.009, 1.1), bq.Point(0.2, 0.95, 0.08, 5.2)
    results = {"yolox-nano": {"l2": {0.01: bq.Point(0.01, 0.002, 0.001, 1.0)},
                              "search+mean": {0.01: within}, "search+refit": {0.01: beyond}}}
    lines = bq.table(results, ["l2", "search+mean", "search+refit"])
    assert lines[2] == "| yolox-nano | cosine ≥ 0.99 | 0% 1.00x | 12% 1.10x | 95% 5.20x ✗ 0.08 |"
    assert bq.target_lines(results, ["l2", "search+mean", "search+refit"]) == [
        "- yolox-nano, cosine ≥ 0.99: best search+mean removes 12.0% of the MACs, l2 0.2%: target met"]
    results["yolox-nano"]["search+mean"] = {0.01: beyond}
    assert "no search with repair stays within the budget" in bq.target_lines(results, ["l2", "search+mean"])[0]
