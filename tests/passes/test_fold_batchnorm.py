"""FoldBatchNormPass: every fold kind changes the structure as stated and keeps the outputs."""
from __future__ import annotations

import numpy as np
import onnx
import pytest

from graphprune.graph.model import from_proto, to_proto
from graphprune.passes.fold import fold
from graphprune.passes.absorbers import convtranspose_out_channels
from graphprune.passes.fold_batchnorm import FoldBatchNormPass, conv_reads_padding
from tests.helpers.fold import FP16_TOL, GraphBuilder, fold_checked, init_shapes, only, op_counts


def _skipped_reason(result, name: str) -> str:
    reasons = dict(result.skipped)
    assert name in reasons, f"{name} not reported as skipped: {result.skipped}"
    return reasons[name]


# ----------------------------------------------------------------------------- after a Conv
@pytest.mark.parametrize("group", [1, 2, 8], ids=["dense", "grouped", "depthwise"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_bn_after_conv(group, bias):
    b = GraphBuilder()
    y = b.bn(b.conv(b.input([2, 8, 9, 9]), 8, 8, group=group, bias=bias, pads=[1, 1, 1, 1]), 8)
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"Conv": 1}
    conv = only(result.model, "Conv")
    assert init_shapes(result.model, conv) == [(8, 8 // group, 3, 3), (8,)]
    assert conv.output[0] == y
    assert [(f.op_type, f.direction) for f in result.folded] == [("BatchNormalization", "producer")]
    assert result.batchnorm_before == 1 and result.batchnorm_after == 0 and result.skipped == []


def test_bn_output_that_is_a_graph_output_keeps_its_name():
    b = GraphBuilder()
    y = b.bn(b.conv(b.input([1, 3, 6, 6]), 3, 4), 4)
    result = fold_checked(b.model(y))
    assert [o.name for o in result.model.graph.output] == [y]
    assert op_counts(result.model) == {"Conv": 1}


# ----------------------------------------------------------------------------- after a ConvTranspose
def test_convtranspose_channel_map_follows_weight_layout():
    # Cin=4, Cout=6, group=2: input channels 0-1 write outputs 0-2, input channels 2-3 write 3-5
    out = convtranspose_out_channels(cin=4, cout_per_group=3, group=2)
    assert out.tolist() == [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]]


@pytest.mark.parametrize("group,bias", [(1, True), (1, False), (2, True), (2, False)])
def test_bn_after_convtranspose(group, bias):
    b = GraphBuilder(seed=group)
    x = b.input([1, 4, 5, 5])
    y = b.bn(b.convtranspose(x, 4, 6, group=group, bias=bias, strides=[2, 2], output_padding=[1, 1]), 6)
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"ConvTranspose": 1}
    assert init_shapes(result.model, only(result.model, "ConvTranspose")) == [(4, 6 // group, 3, 3), (6,)]


# ----------------------------------------------------------------------------- after Gemm / MatMul
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("bias,c_shape", [(None, (5,)), ("vector", (5,)), ("matrix", (3, 5)), ("scalar", (5,))])
def test_bn_after_gemm(trans_b, bias, c_shape):
    b = GraphBuilder(seed=trans_b)
    y = b.bn(b.gemm(b.input([3, 7]), 7, 5, trans_b=trans_b, bias=bias, m=3, alpha=0.7, beta=1.3), 5)
    result = fold_checked(b.model(y))
    gemm = only(result.model, "Gemm")
    assert op_counts(result.model) == {"Gemm": 1}
    assert init_shapes(result.model, gemm) == [(5, 7) if trans_b else (7, 5), c_shape]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in gemm.attribute}
    assert attrs["alpha"] == pytest.approx(0.7) and attrs.get("beta", 1.0) == 1.0


def test_bn_after_matmul_leaves_one_add():
    b = GraphBuilder()
    y = b.bn(b.matmul(b.input([4, 6]), 6, 5), 5)
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"MatMul": 1, "Add": 1}
    assert init_shapes(result.model, only(result.model, "MatMul")) == [(6, 5)]
    assert init_shapes(result.model, only(result.model, "Add")) == [(5,)]


def test_bn_after_matmul_with_bias_add_merges_into_it():
    b = GraphBuilder()
    h = b.op("Add", [b.matmul(b.input([2, 3, 6]), 6, 5), b.const(shape=(5,))])
    y = b.op("BatchNormalization", [b.op("Transpose", [h], perm=[0, 2, 1]), *b.bn_params(5)])
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"MatMul": 1, "Add": 1, "Transpose": 1}


@pytest.mark.parametrize("view", ["Reshape", "Unsqueeze"])
def test_bn1d_after_linear_through_a_view(view):
    """MatMul [N,F] -> Reshape/Unsqueeze [N,F,1,1] -> 4-D BN: the channel axis is kept."""
    b = GraphBuilder()
    h = b.matmul(b.input([3, 6]), 6, 4)
    if view == "Reshape":
        h = b.op("Reshape", [h, b.const(np.array([3, 4, 1, 1], dtype=np.int64))])
    else:
        h = b.op("Unsqueeze", [h, b.const(np.array([2, 3], dtype=np.int64))])
    y = b.bn(h, 4)
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"MatMul": 1, view: 1, "Add": 1}
    assert init_shapes(result.model, only(result.model, "Add")) == [(4, 1, 1)]


def test_bn_after_gemm_through_reshape_goes_into_c():
    b = GraphBuilder()
    h = b.op("Reshape", [b.gemm(b.input([3, 6]), 6, 4), b.const(np.array([0, 4, 1, 1], dtype=np.int64))])
    result = fold_checked(b.model(b.bn(h, 4)))
    assert op_counts(result.model) == {"Gemm": 1, "Reshape": 1}


def test_view_that_splits_the_channel_axis_is_refused():
    b = GraphBuilder()
    h = b.op("Reshape", [b.matmul(b.input([3, 8]), 8, 8), b.const(np.array([3, 2, 4], dtype=np.int64))])
    bn = b.bn(h, 2)
    result = fold_checked(b.model(bn))
    assert op_counts(result.model)["BatchNormalization"] == 1
    assert "does not keep the 8 channels" in result.skipped[0][1]


# ----------------------------------------------------------------------------- before a Conv / Gemm
@pytest.mark.parametrize("group", [1, 4])
def test_bn_before_unpadded_conv(group):
    b = GraphBuilder()
    y = b.conv(b.bn(b.input([1, 4, 7, 7]), 4), 4, 6 if group == 1 else 8, group=group, bias=False, strides=[2, 2])
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"Conv": 1}
    cout = 6 if group == 1 else 8
    assert init_shapes(result.model, only(result.model, "Conv")) == [(cout, 4 // group, 3, 3), (cout,)]
    assert [f.direction for f in result.folded] == ["consumers"]


def test_bn_before_padded_conv_is_refused_when_it_shifts():
    b = GraphBuilder()
    bn_out = b.bn(b.input([1, 4, 7, 7]), 4)
    model = b.model(b.conv(bn_out, 4, 6, pads=[1, 1, 1, 1]))
    result = fold_checked(model)
    assert op_counts(result.model) == {"BatchNormalization": 1, "Conv": 1}
    assert "zero-pads its input and the BN shift is nonzero" in _skipped_reason(result, model.graph.node[0].name)


def test_bn_without_shift_folds_into_a_padded_conv():
    b = GraphBuilder()
    y = b.conv(b.bn(b.input([1, 4, 7, 7]), 4, zero_shift=True), 4, 6, pads=[1, 1, 1, 1])
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"Conv": 1}


def test_conv_padding_rule():
    same = onnx.helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER")
    valid = onnx.helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="VALID")
    pads = onnx.helper.make_node("Conv", ["x", "w"], ["y"], pads=[0, 1, 0, 1])
    assert conv_reads_padding(same, (3, 3)) and not conv_reads_padding(same, (1, 1))
    assert not conv_reads_padding(valid, (3, 3)) and conv_reads_padding(pads, (3, 3))


def test_bn_before_two_convs_folds_into_both():
    b = GraphBuilder()
    h = b.bn(b.input([1, 4, 6, 6]), 4)
    model = b.model(b.conv(h, 4, 3), b.conv(h, 4, 5, k=1))
    result = fold_checked(model)
    assert op_counts(result.model) == {"Conv": 2}
    assert sorted(result.folded[0].into) == sorted(n.name for n in model.graph.node if n.op_type == "Conv")


def test_bn_before_conv_and_relu_stays():
    b = GraphBuilder()
    h = b.bn(b.input([1, 4, 6, 6]), 4)
    model = b.model(b.conv(h, 4, 3, pads=[0, 0, 0, 0]), b.op("Relu", [h]))
    result = fold_checked(model)
    assert op_counts(result.model)["BatchNormalization"] == 1
    assert "feeds Relu" in result.skipped[0][1]


@pytest.mark.parametrize("view", ["Flatten", "Reshape"])
def test_bn_before_gemm_after_flatten(view):
    b = GraphBuilder()
    h = b.bn(b.input([2, 3, 2, 2]), 3)
    shape = [b.const(np.array([0, -1], dtype=np.int64))] if view == "Reshape" else []
    y = b.gemm(b.op(view, [h, *shape]), 12, 5, trans_b=1, alpha=0.5, beta=2.0)
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {view: 1, "Gemm": 1}
    assert init_shapes(result.model, only(result.model, "Gemm"))[:2] == [(5, 12), (5,)]


def test_bn1d_before_gemm():
    b = GraphBuilder()
    y = b.gemm(b.bn(b.input([4, 6]), 6), 6, 3, bias=None)
    result = fold_checked(b.model(y))
    assert op_counts(result.model) == {"Gemm": 1}
    assert init_shapes(result.model, only(result.model, "Gemm")) == [(6, 3), (3,)]


# ----------------------------------------------------------------------------- what stays
def test_training_mode_batchnorm_stays():
    b = GraphBuilder(opset=15)
    x = b.conv(b.input([2, 3, 5, 5]), 3, 4)
    y = b.bn(x, 4, outputs=["y", "running_mean", "running_var"], training_mode=1)
    result = fold(from_proto(b.model(y)))
    assert op_counts(result.model)["BatchNormalization"] == 1 and not result.folded
    assert "training" in result.skipped[0][1]


def test_declared_training_outputs_stay():
    """Opset 9: a BN that declares its mean/var outputs runs with batch statistics in ORT."""
    b = GraphBuilder(opset=9)
    x = b.conv(b.input([2, 3, 5, 5]), 3, 4)
    y = b.bn(x, 4, outputs=["y", "m", "v", "sm", "sv"])
    result = fold_checked(b.model(y))
    assert op_counts(result.model)["BatchNormalization"] == 1
    assert "training outputs" in result.skipped[0][1]


def test_conv_output_with_another_reader_stays():
    b = GraphBuilder()
    h = b.conv(b.input([1, 3, 5, 5]), 3, 4)
    model = b.model(b.bn(h, 4), b.op("Relu", [h]))
    result = fold_checked(model)
    assert op_counts(result.model) == {"Conv": 1, "BatchNormalization": 1, "Relu": 1}
    assert "feeds 2 inputs" in result.skipped[0][1]


def test_shape_readers_do_not_block_a_fold():
    """Shape(conv output) sees only the shape, which folding keeps: it reads the BN output after."""
    b = GraphBuilder()
    h = b.conv(b.input([1, 3, 5, 5]), 3, 4)
    y = b.bn(h, 4)
    result = fold_checked(b.model(y, b.op("Shape", [h])))
    assert op_counts(result.model) == {"Conv": 1, "Shape": 1}
    assert only(result.model, "Shape").input[0] == y == only(result.model, "Conv").output[0]


def test_conv_output_that_is_a_graph_output_stays():
    b = GraphBuilder()
    h = b.conv(b.input([1, 3, 5, 5]), 3, 4)
    result = fold_checked(b.model(b.bn(h, 4), h))
    assert op_counts(result.model) == {"Conv": 1, "BatchNormalization": 1}
    assert "graph output" in result.skipped[0][1]


def test_weight_that_is_a_graph_input_is_not_modified():
    b = GraphBuilder()
    w = b.input([4, 3, 3, 3], name="w")
    y = b.bn(b.op("Conv", [b.input([1, 3, 5, 5]), w]), 4)
    model = b.model(y)
    result = fold(from_proto(model))
    assert op_counts(result.model)["BatchNormalization"] == 1
    assert "'w' of Conv" in result.skipped[0][1] and "graph input" in result.skipped[0][1]


def test_bn_parameter_that_is_a_graph_input_stays():
    b = GraphBuilder()
    params = b.bn_params(4)
    b.inits = [t for t in b.inits if t.name != params[2]]
    b.input([4], name=params[2])
    y = b.op("BatchNormalization", [b.conv(b.input([1, 3, 5, 5]), 3, 4), *params])
    result = fold(from_proto(b.model(y)))
    assert op_counts(result.model)["BatchNormalization"] == 1
    assert "graph input" in result.skipped[0][1]


def test_shared_conv_weight_is_copied_not_overwritten():
    b = GraphBuilder()
    x = b.input([1, 3, 5, 5])
    w = b.const(shape=(4, 3, 3, 3))
    y1 = b.bn(b.op("Conv", [x, w]), 4)
    y2 = b.bn(b.op("Conv", [x, w]), 4)
    result = fold_checked(b.model(y1, y2))
    convs = [n for n in result.model.graph.node if n.op_type == "Conv"]
    assert op_counts(result.model) == {"Conv": 2}
    # the first fold copied the shared weight; the second then owned the original alone
    assert [c.input[1] for c in convs] == [f"{w}_folded", w]  # the copy is named after what it replaces


def test_shared_bn_parameters_fold_for_both():
    b = GraphBuilder()
    x = b.input([1, 3, 5, 5])
    params = b.bn_params(4)
    y1 = b.op("BatchNormalization", [b.conv(x, 3, 4), *params])
    y2 = b.op("BatchNormalization", [b.conv(x, 3, 4), *params])
    result = fold_checked(b.model(y1, y2))
    assert op_counts(result.model) == {"Conv": 2}


def test_initializers_declared_as_inputs_are_weights():
    """IR 3 style: every initializer also a graph input; folds write new initializers."""
    b = GraphBuilder(opset=9)
    y = b.bn(b.conv(b.input([1, 3, 5, 5]), 3, 4), 4)
    model = b.model(y)
    model.ir_version = 3
    for t in model.graph.initializer:
        model.graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    result = fold_checked(model)
    inits = {t.name for t in result.model.graph.initializer}
    assert op_counts(result.model) == {"Conv": 1}
    assert {i.name for i in result.model.graph.input} == inits | {"x"}


def test_bn_after_bn_merges_into_the_first():
    b = GraphBuilder()
    x = b.input([1, 4, 5, 5])
    h = b.op("Concat", [x, x], axis=1)
    result = fold_checked(b.model(b.op("Relu", [b.bn(b.bn(h, 8), 8)])))
    assert op_counts(result.model) == {"Concat": 1, "BatchNormalization": 1, "Relu": 1}
    assert len(result.skipped) == 1 and "Concat" in result.skipped[0][1]


# ----------------------------------------------------------------------------- dtypes, idempotence
def test_float16_model():
    b = GraphBuilder(dtype=np.float16)
    y = b.bn(b.conv(b.input([1, 3, 6, 6]), 3, 4), 4)
    result = fold_checked(b.model(y), rtol=FP16_TOL, atol=FP16_TOL)
    assert op_counts(result.model) == {"Conv": 1}
    assert {t.data_type for t in result.model.graph.initializer} == {onnx.TensorProto.FLOAT16}


def test_float64_model():
    b = GraphBuilder(dtype=np.float64)
    y = b.bn(b.gemm(b.input([3, 6]), 6, 4), 4)
    result = fold_checked(b.model(y), rtol=1e-12, atol=1e-12)
    assert op_counts(result.model) == {"Gemm": 1}
    assert {t.data_type for t in result.model.graph.initializer} == {onnx.TensorProto.DOUBLE}


def test_pass_reports_modification_and_second_run_is_a_no_op():
    b = GraphBuilder()
    y = b.conv(b.bn(b.conv(b.input([1, 3, 6, 6]), 3, 4), 4), 4, 2)
    graph = from_proto(b.model(y))
    first = FoldBatchNormPass()(graph)
    frozen = to_proto(graph).SerializeToString()
    second = FoldBatchNormPass()(graph)
    assert first.modified and len(first.folded) == 1
    assert not second.modified and second.folded == [] and to_proto(graph).SerializeToString() == frozen
