"""``profile``: params, activation memory, totals, comparison, latency, summaries."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from graphprune.errors import UsageError
from graphprune.profiling import LatencyStats, ModelProfile, profile
from tests.helpers.models import model, save, small_cnn

F = TensorProto.FLOAT

# small_cnn(width=8, classes=10, hw=16): conv 8x3x3x3 + 8, fc 10x8 + 10
CNN_PARAMS = 8 * 27 + 8 + 80 + 10
CNN_MACS = {"conv": 8 * 16 * 16 * 27 + 8 * 16 * 16, "relu": 8 * 256, "pool": 8 * 64 * 4, "gap": 8 * 64,
            "flatten": 0, "fc": 10 * 8 + 10}


def test_small_cnn_per_node_and_totals():
    p = profile(small_cnn())
    assert isinstance(p, ModelProfile)
    assert {n.name: n.macs for n in p.nodes} == CNN_MACS
    assert p.total_macs == sum(CNN_MACS.values())
    assert p.total_params == CNN_PARAMS
    assert p.node("conv").params == 8 * 27 + 8 and p.node("fc").params == 90
    assert p.node("conv").output_shape == (1, 8, 16, 16)
    assert p.node("conv").activation_bytes == 8 * 256 * 4
    assert p.input_shapes == {"x": (1, 3, 16, 16)}
    assert list(p.by_op_type)[0] == "Conv"                               # sorted by MACs
    assert p.by_op_type["Conv"].macs == CNN_MACS["conv"] and p.by_op_type["Gemm"].params == 90


def test_batch_from_input_shapes_scales_macs_not_params():
    p = profile(small_cnn(), input_shapes={"x": (4, 3, 16, 16)})
    assert p.total_macs == 4 * sum(CNN_MACS.values())
    assert p.total_params == CNN_PARAMS


def test_weights_computed_from_constants_count_once_at_their_reader():
    # a ConstantOfShape fill of 2x4 read through a Cast by the MatMul: 8 parameters, at the MatMul
    nodes = [helper.make_node("ConstantOfShape", ["dims"], ["fill"], name="fill",
                              value=onnx.numpy_helper.from_array(np.ones(1, np.float32))),
             helper.make_node("Cast", ["fill"], ["w"], name="cast", to=F),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [3, 2])], [("y", F, [3, 4])], {"dims": np.array([2, 4], np.int64)})
    p = profile(m)
    assert (p.node("fill").params, p.node("cast").params, p.node("mm").params) == (0, 0, 8)
    assert p.total_params == 8


def test_a_weight_reshaped_by_a_constant_shape_counts_once_at_the_matmul():
    # CNTK exports reshape their weights with an int64 shape: the Reshape computes a constant
    # from constants and reads no parameter; the 2x4 weight counts once, at the MatMul
    nodes = [helper.make_node("Reshape", ["w_flat", "shape"], ["w"], name="reshape_w"),
             helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [3, 2])], [("y", F, [3, 4])],
              {"w_flat": np.ones(8, np.float32), "shape": np.array([2, 4], np.int64)})
    p = profile(m)
    assert (p.node("reshape_w").params, p.node("mm").params) == (0, 8)
    assert p.total_params == 8


def test_shared_weights_count_once_and_shapes_are_not_params():
    w = np.ones((4, 4), np.float32)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"], name="mm1"),
             helper.make_node("MatMul", ["a", "w"], ["b"], name="mm2"),
             helper.make_node("Reshape", ["b", "shape"], ["c"], name="reshape"),
             helper.make_node("Constant", [], ["k"], name="const",
                              value=onnx.numpy_helper.from_array(np.ones(3, np.float32))),
             helper.make_node("Mul", ["c", "k"], ["y"], name="mul")]
    m = model(nodes, [("x", F, [3, 4])], [("y", F, [4, 3])], {"w": w, "shape": np.array([4, 3], np.int64)})
    p = profile(m)
    assert (p.node("mm1").params, p.node("mm2").params, p.node("reshape").params) == (16, 0, 0)
    assert (p.node("const").params, p.node("mul").params) == (0, 3)  # a constant counts where it is read
    assert p.total_params == 19


def test_activation_bytes_and_peak():
    # x -> a = Relu(x) -> y = Add(x, a): x, a and y are alive together at the Add
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"), helper.make_node("Add", ["x", "a"], ["y"], name="add")]
    m = model(nodes, [("x", F, [1, 4, 8, 8])], [("y", F, [1, 4, 8, 8])])
    p = profile(m)
    assert p.activation_bytes == 2 * 1024
    assert p.peak_activation_bytes == 3 * 1024


def test_peak_frees_tensors_after_their_last_use():
    # a chain: never more than two 1 KiB tensors alive
    nodes = [helper.make_node("Relu", [src], [dst], name=dst) for src, dst in (("x", "a"), ("a", "b"), ("b", "y"))]
    p = profile(model(nodes, [("x", F, [1, 256])], [("y", F, [1, 256])]))
    assert p.peak_activation_bytes == 2 * 1024 and p.activation_bytes == 3 * 1024


def test_shapes_static_inference_cannot_see_come_from_onnxruntime():
    # Reshape to a shape computed in floats: shape inference gives up, one ORT run tells [8, 3]
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Cast", ["s"], ["sf"], to=F),
             helper.make_node("Mul", ["sf", "scale"], ["sm"]),
             helper.make_node("Cast", ["sm"], ["si"], to=TensorProto.INT64),
             helper.make_node("Reshape", ["x", "si"], ["r"]), helper.make_node("MatMul", ["r", "w"], ["y"], name="mm")]
    m = model(nodes, [("x", F, [4, 6])], [("y", F, None)],
              {"scale": np.array([2.0, 0.5], np.float32), "w": np.ones((3, 5), np.float32)})
    p = profile(m)
    assert p.node("mm").output_shape == (8, 5)
    assert p.node("mm").macs == 8 * 5 * 3


def test_compare_gives_ratios(tmp_path):
    big, small = small_cnn(width=8), small_cnn(width=4)
    p = profile(save(big, tmp_path / "big.onnx"), compare=save(small, tmp_path / "small.onnx"))
    q = profile(small)
    assert p.compare.total_macs == q.total_macs and p.compare.name == "small.onnx" and p.name == "big.onnx"
    assert p.mac_ratio == pytest.approx(q.total_macs / p.total_macs)
    assert p.param_ratio == pytest.approx((4 * 28 + 50) / CNN_PARAMS)
    assert p.speedup is None and p.latency is None                        # no --bench
    assert p.file_size == (tmp_path / "big.onnx").stat().st_size
    lines = p.summary_lines()
    assert lines[0] == "inputs x:1x3x16x16"
    assert lines[1].split() == ["metric", "big.onnx", "small.onnx", "ratio"]
    macs_row = next(ln for ln in lines if ln.startswith("MACs "))
    assert macs_row.split()[-1] == f"{q.total_macs / p.total_macs:.4g}"


def test_bench_times_both_models_in_one_run():
    p = profile(small_cnn(), compare=small_cnn(width=4), bench=True, runs=6, warmup=1, threads=1, progress=False)
    for lat in (p.latency, p.compare.latency):
        assert isinstance(lat, LatencyStats)
        assert (lat.runs, lat.warmup, lat.threads) == (6, 1, 1)
        assert 0 < lat.min_ms <= lat.p10_ms <= lat.median_ms <= lat.p90_ms
    assert p.speedup == pytest.approx(p.latency.median_ms / p.compare.latency.median_ms)
    assert any(ln.startswith("MAC ratio ") and "measured speedup" in ln for ln in p.summary_lines())


@pytest.mark.parametrize("kwargs,message", [({"runs": 0}, "--runs must be at least 1"),
                                            ({"threads": 0}, "--threads must be at least 1"),
                                            ({"warmup": -1}, "--warmup must be at least 0")])
def test_bench_option_errors(kwargs, message):
    with pytest.raises(UsageError, match=message):
        profile(small_cnn(), bench=True, **kwargs)


def test_latency_stats_from_known_times():
    s = LatencyStats.from_times([0.001, 0.002, 0.003, 0.004, 0.010], warmup=2, threads=1)
    assert s.median_ms == pytest.approx(3.0) and s.min_ms == pytest.approx(1.0) and s.mean_ms == pytest.approx(4.0)
    assert s.p90_ms == pytest.approx(7.6) and s.runs == 5


def test_to_dict_is_json_and_matches_the_totals():
    p = profile(small_cnn(), compare=small_cnn(width=4))
    data = json.loads(json.dumps(p.to_dict()))
    assert data["total_macs"] == p.total_macs and data["total_params"] == CNN_PARAMS
    assert [n["name"] for n in data["nodes"]] == list(CNN_MACS)
    assert data["compare"]["total_macs"] == p.compare.total_macs and data["mac_ratio"] == p.mac_ratio
    assert "nodes" not in p.to_dict(per_node=False)


def test_per_node_summary_lists_every_node():
    lines = profile(small_cnn()).summary_lines(per_node=True)
    start = lines.index("model: per node")
    assert [ln.split()[0] for ln in lines[start + 3:]] == list(CNN_MACS)
