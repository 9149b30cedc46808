"""The check of an exact rewrite scales its tolerance to each output's magnitude (FOLD_RTOL_OF_SCALE).

Reproduces issue 10's Keras failure on a synthetic model: four Conv -> BatchNormalization
layers (BN shifts of about 10, weights scaled so activations grow) whose outputs reach about
650. Folding the BNs in float32 (done here with numpy, the textbook formula) is correct, but
its rounding leaves errors of a few 1e-4 on outputs that are near zero, which an element-wise
test with atol 1e-5 rejects. The scale criterion accepts it, and still rejects a fold with one
output channel's weights off by 1%.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.cli import main
from graphprune.api import fold  # a ModelProto in, FoldResult.model a ModelProto
from graphprune.validation import FOLD_RTOL_OF_SCALE, compare_arrays, scale_violation, validate
from tests.helpers.models import model

F = TensorProto.FLOAT
LAYERS, CHANNELS, EPSILON = 4, 32, 1e-5


def _layer_weights(rng, cin):
    return {"w": (rng.standard_normal((CHANNELS, cin, 3, 3)) * 3.0 / np.sqrt(cin * 9)).astype(np.float32),
            "b": rng.standard_normal(CHANNELS).astype(np.float32),
            "scale": rng.uniform(0.5, 2.0, CHANNELS).astype(np.float32),
            "shift": (rng.standard_normal(CHANNELS) * 10).astype(np.float32),
            "mean": rng.standard_normal(CHANNELS).astype(np.float32),
            "var": rng.uniform(0.5, 2.0, CHANNELS).astype(np.float32)}


def _folded(p: dict) -> tuple[np.ndarray, np.ndarray]:
    """Conv then BN as one Conv: w * k, (b - mean) * k + shift with k = scale / sqrt(var + eps), in float32."""
    k = (p["scale"] / np.sqrt(p["var"] + np.float32(EPSILON))).astype(np.float32)
    return (p["w"] * k[:, None, None, None]).astype(np.float32), ((p["b"] - p["mean"]) * k + p["shift"]).astype(np.float32)


def _network(folded: bool = False, off_channel: float = 0.0) -> onnx.ModelProto:
    """x [1, 3, 16, 16] -> 4 x (Conv 3x3 -> BN [-> Relu]); ``folded``: the BNs folded into the Convs.

    ``off_channel``: the last Conv's output channel 0 weights are multiplied by 1 + off_channel."""
    rng = np.random.default_rng(0)
    nodes, inits, x = [], {}, "x"
    for i in range(LAYERS):
        p = _layer_weights(rng, 3 if i == 0 else CHANNELS)
        if folded:
            w, b = _folded(p)
            if i == LAYERS - 1:
                w[0] *= np.float32(1 + off_channel)
            inits.update({f"w{i}": w, f"b{i}": b})
        else:
            inits.update({f"{k}{i}": v for k, v in p.items()})
        nodes.append(helper.make_node("Conv", [x, f"w{i}", f"b{i}"], [f"conv{i}"], pads=[1, 1, 1, 1], name=f"conv{i}"))
        y = f"conv{i}"
        if not folded:
            nodes.append(helper.make_node("BatchNormalization", [y] + [f"{k}{i}" for k in ("scale", "shift", "mean", "var")],
                                          [f"bn{i}"], epsilon=EPSILON, name=f"bn{i}"))
            y = f"bn{i}"
        x = y if i == LAYERS - 1 else f"relu{i}"
        if i < LAYERS - 1:
            nodes.append(helper.make_node("Relu", [y], [x], name=f"relu{i}"))
    nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    return model(nodes, [("x", F, [1, 3, 16, 16])], [("y", F, [1, CHANNELS, 16, 16])], inits)


def test_correct_float32_fold_of_large_outputs_passes_the_scale_check_only():
    elementwise = validate(_network(), _network(folded=True), samples=2, rtol_of_scale=None, progress=False)
    out = elementwise.output("y")
    assert out.max_abs / out.max_rel > 300                        # outputs reach hundreds
    assert 1e-5 < out.max_abs < 1e-3 and out.max_rel < 1e-5       # rounding: large absolute, tiny of the scale
    assert not elementwise.passed and out.violation > 1          # what fold's check said before (issue 10)
    report = validate(_network(), _network(folded=True), samples=2, progress=False)
    assert report.passed and report.rtol_of_scale == FOLD_RTOL_OF_SCALE == 1e-4
    y = report.output("y")
    assert y.scale_violation == pytest.approx(y.max_abs / (1e-5 + 1e-4 * (y.max_abs / y.max_rel)))
    assert y.scale_violation < 0.1 and y.tolerance_ratio == y.scale_violation
    assert "(or max error <= atol + 0.0001 x max |reference| per output)" in report.summary_lines()[0]


def test_one_channel_off_by_one_percent_still_fails():
    report = validate(_network(), _network(folded=True, off_channel=1e-2), samples=2, progress=False)
    y = report.output("y")
    assert not report.passed and y.max_rel > 1e-3 and y.scale_violation > 10


def test_graphprune_fold_of_the_network_is_accepted_by_the_fold_command(tmp_path, capsys):
    original = _network()
    folded = fold(original, inplace=False).model
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    assert validate(original, folded, samples=2, progress=False).passed
    onnx.save(original, str(tmp_path / "bn.onnx"))
    code = main(["fold", str(tmp_path / "bn.onnx"), "-o", str(tmp_path / "folded.onnx")])
    out = capsys.readouterr().out
    assert code == 0 and "validation PASSED" in out and (tmp_path / "folded.onnx").is_file()


def test_scale_violation_formula():
    assert scale_violation(2e-3, 100.0, atol=1e-5, rtol_of_scale=1e-4) == pytest.approx(2e-3 / (1e-5 + 1e-2))
    assert scale_violation(0.0, 0.0, atol=0.0, rtol_of_scale=1e-4) == 0.0
    assert scale_violation(1e-9, 0.0, atol=0.0, rtol_of_scale=1e-4) == float("inf")
    ref = [np.array([1000.0, 0.0], np.float32)]
    near_zero_error = [np.array([1000.0, 5e-3], np.float32)]     # 5e-3 on an element that is 0
    assert not compare_arrays("y", ref, near_zero_error).passed
    scaled = compare_arrays("y", ref, near_zero_error, rtol_of_scale=1e-4)
    assert scaled.passed and scaled.scale_violation == pytest.approx(5e-3 / (1e-5 + 0.1), rel=1e-6)
