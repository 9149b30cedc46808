"""Unusual but valid models: the groups touching the unusual part are blocked with a reason that
names the node, every other group still prunes, and the output is valid and runs.

``graphprune prune`` itself proves each pruned model against its oracle in onnxruntime (exit 1
otherwise), so exit 0 means the oracle holds; the tests add the structural checks: full ONNX
checker, same output names and shapes, the stem pruned, the unusual node kept under its name.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx.reference import ReferenceEvaluator

from graphprune.errors import EXIT_BAD_MODEL
from tests.helpers import robust as rm
from tests.helpers.onnxrt import random_feeds, run
from tests.helpers.planning import analysed
from tests.helpers.robust import assert_one_line, run_cli, save


def _groups(model: onnx.ModelProto) -> dict[tuple[str, int], tuple[bool, set[str]]]:
    """(initializer, axis) of each group's first parameter -> (prunable, barrier reasons)."""
    _, analysis = analysed(model)
    out = {}
    for g in analysis.groups:
        for p in g.params:
            out[(p.initializer, p.axis)] = (g.prunable, {b.reason for b in g.barriers})
    return out


def _init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def _output_shapes(model: onnx.ModelProto, feeds: dict) -> dict:
    return {k: v.shape for k, v in run(model, feeds).items()}


# model builder, the weight whose axis must be pruned (and its pruned size), reasons that must block
RUNNABLE = [
    ("fused_conv", rm.fused_conv, ("w1", 0, 4), ["com.microsoft.FusedConv node fused: no rule for this op"]),
    ("skip_layernorm_attention", rm.transformer_block, ("w_up", 1, 16),
     ["SkipLayerNormalization skip_ln normalizes over axis 2 (the hidden axis)"]),
    ("if", rm.if_node, ("w1", 0, 4), ["If node branch: subgraph ops are barriers"]),
    ("loop", rm.loop_node, ("w1", 0, 4), ["Loop node loop: subgraph ops are barriers"]),
    ("scan", rm.scan_node, ("w1", 0, 4), ["Scan node scan: subgraph ops are barriers"]),
    ("qdq", rm.qdq, ("w1", 0, 4), ["QuantizeLinear node quantize_act: no rule for this op",
                                   "DequantizeLinear node dequantize_w3: no rule for this op"]),
    ("qlinear_conv", rm.qlinear_conv, ("w1", 0, 4), ["QuantizeLinear node quantize_act: no rule for this op",
                                                     "DequantizeLinear node dequantize_out: no rule for this op"]),
    ("conv_integer", rm.conv_integer, ("w1", 0, 4), ["QuantizeLinear node quantize_act: no rule for this op",
                                                     "ConvInteger node conv_integer: no rule for this op"]),
    ("float16", rm.float16_cnn, ("w2", 0, 4), []),
    ("several_inputs_outputs", rm.several_inputs_outputs, ("w6", 0, 4), ["y2 is a graph output"]),
    ("initializers_as_inputs", rm.initializers_as_inputs, ("w2", 0, 4), []),
    ("int64_shape_subgraph", rm.shape_subgraph, ("wg", 1, 256), []),
]


@pytest.mark.parametrize("case,build,pruned,reasons", RUNNABLE, ids=[c[0] for c in RUNNABLE])
def test_unusual_model_blocks_with_a_reason_and_prunes_the_rest(tmp_path, capsys, case, build, pruned, reasons):
    model = build()
    onnx.checker.check_model(model, full_check=True)
    groups = _groups(model)
    all_reasons = set().union(*(r for _, r in groups.values()))
    for reason in reasons:
        assert reason in all_reasons, f"{reason!r} not among {sorted(all_reasons)}"
        assert all(not ok for ok, r in groups.values() if reason in r)  # those groups are blocked
    weight, axis, size = pruned
    assert groups[(weight, axis)][0], f"group of {weight}[axis {axis}] should be prunable"

    path = save(model, tmp_path / "model.onnx")
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    onnx.checker.check_model(out, full_check=True)
    assert _init(out, weight).dims[axis] == size
    assert [o.name for o in out.graph.output] == [o.name for o in model.graph.output]
    assert {n.name for n in model.graph.node} <= {n.name for n in out.graph.node}  # the unusual nodes are kept
    feeds = random_feeds(model, seed=0)
    assert _output_shapes(out, feeds) == _output_shapes(model, feeds)


def test_quantized_weights_stay_quantized(tmp_path, capsys):
    """DequantizeLinear of an int8 weight is not folded to float (the model would grow 4x)."""
    path = save(rm.qdq(opset=21), tmp_path / "model.onnx")
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    w3 = _init(out, "w3_q")
    assert w3.data_type == T.INT8 and list(w3.dims) == [8, 8, 3, 3]
    assert "dequantize_w3" in {n.name for n in out.graph.node}


def test_float16_weights_stay_float16(tmp_path, capsys):
    path = save(rm.float16_cnn(), tmp_path / "model.onnx")
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    assert {t.data_type for t in out.graph.initializer} == {T.FLOAT16}
    assert [list(_init(out, n).dims) for n in ("w1", "w2", "w4")] == [[4, 3, 3, 3], [4, 4, 3, 3], [4, 4, 3, 3]]


def test_initializer_inputs_keep_their_declared_shapes_in_sync(tmp_path, capsys):
    path = save(rm.initializers_as_inputs(), tmp_path / "model.onnx")
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    declared = {i.name: [d.dim_value for d in i.type.tensor_type.shape.dim] for i in out.graph.input}
    for t in out.graph.initializer:
        assert declared[t.name] == list(t.dims), t.name
    assert out.ir_version == 3


def test_custom_domain_op_blocks_its_groups_and_onnxruntime_refusal_is_one_line(tmp_path, capsys):
    model = rm.custom_domain()
    groups = _groups(model)
    assert any("my.ops.Swish node custom_swish: no rule for this op" in r for _, r in groups.values())
    assert groups[("w1", 0)][0]
    path = save(model, tmp_path / "model.onnx")
    # validation needs onnxruntime, which has no kernel for my.ops.Swish: one line, exit 3, nothing written
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5")
    assert code == EXIT_BAD_MODEL
    assert_one_line(err, r"graphprune: error: .*onnxruntime cannot load it: .*my\.ops:Swish.*")
    assert not (tmp_path / "out.onnx").exists()
    # without validation the model prunes, stays valid, and keeps the custom node
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5", "--no-validate")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    onnx.checker.check_model(out, full_check=True)
    assert _init(out, "w1").dims[0] == 4
    assert [n for n in out.graph.node if n.name == "custom_swish"][0].domain == "my.ops"


def test_bfloat16_model_prunes_and_matches_its_oracle_in_the_reference_runtime(tmp_path, capsys):
    """onnxruntime has no bfloat16 Relu on CPU, so the oracle is checked with onnx's reference evaluator."""
    model = rm.bfloat16_mlp()
    path = save(model, tmp_path / "model.onnx")
    code, _, err = run_cli(capsys, "prune", path, "-o", tmp_path / "out.onnx", "--ratio", "0.5", "--no-validate")
    assert code == 0, err
    out = onnx.load(str(tmp_path / "out.onnx"))
    onnx.checker.check_model(out, full_check=True)
    assert {t.data_type for t in out.graph.initializer} == {T.BFLOAT16}
    w1, w1_pruned = onnx.numpy_helper.to_array(_init(model, "w1")), onnx.numpy_helper.to_array(_init(out, "w1"))
    assert w1_pruned.shape == (16, 16)
    kept = [next(j for j in range(32) if np.array_equal(w1[:, j], col)) for col in w1_pruned.T]
    removed = sorted(set(range(32)) - set(kept))
    oracle = onnx.ModelProto()
    oracle.CopyFrom(model)
    w2 = onnx.numpy_helper.to_array(_init(oracle, "w2")).copy()
    w2[removed, :] = 0
    _init(oracle, "w2").CopyFrom(onnx.numpy_helper.from_array(w2, "w2"))
    x = np.random.default_rng(0).standard_normal((1, 16)).astype(w1.dtype)
    expected = ReferenceEvaluator(oracle).run(None, {"x": x})[0].astype(np.float32)
    got = ReferenceEvaluator(out).run(None, {"x": x})[0].astype(np.float32)
    np.testing.assert_allclose(got, expected, rtol=2e-2, atol=2e-2)  # bfloat16 keeps 8 bits of mantissa
