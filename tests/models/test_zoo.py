"""The reference zoo: valid models at every opset, the right topology, healthy numbers, seeded."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper, shape_inference

from models import make_demo
from models.builder import GraphBuilder
from models.zoo import ZOO, build
from tests.helpers.onnxrt import random_feeds, run

N = "N"
# Opsets 9, 11, 13, 17, 21 plus every opset where an op form changes (10 Resize/Slice inputs,
# 12 Dropout ratio input, 14 HardSwish, 18 Reduce*/Pad axes inputs and Split num_outputs,
# 20 Gelu). Every architecture exists at every opset 9..21 (through documented equivalents),
# so no (model, opset) combination is missing.
OPSETS = (9, 10, 11, 12, 13, 14, 17, 18, 20, 21)
STD_RANGE = (1e-3, 1e3)
# float32 differences between equivalent op forms (x * HardSigmoid(x) vs HardSwish, the Erf
# formula vs Gelu, Mish vs x * Tanh(Softplus(x)))
FORM_RTOL, FORM_ATOL = 1e-4, 1e-5

CLASSIFIER = ({"input": [N, 3, 64, 64]}, {"logits": [N, 10]})
SHAPES = {
    "resnet18": CLASSIFIER, "resnet50": CLASSIFIER, "resnext": CLASSIFIER, "mobilenetv2": CLASSIFIER,
    "mobilenetv3": CLASSIFIER, "efficientnet": CLASSIFIER, "densenet": CLASSIFIER, "shufflenetv2": CLASSIFIER,
    "shufflenetv2_slice": CLASSIFIER, "shufflenetv2_gather": CLASSIFIER, "demo": CLASSIFIER,
    "vgg": ({"input": [N, 3, 112, 112]}, {"logits": [N, 10]}),
    "vgg_reshape": ({"input": [N, 3, 112, 112]}, {"logits": [N, 10]}),
    "unet": ({"input": [N, 3, 64, 64]}, {"logits": [N, 2, 64, 64]}),
    "yolo_neck": ({"images": [N, 3, 64, 64]}, {"p3": [N, 32, 8, 8], "p4": [N, 64, 4, 4], "p5": [N, 128, 2, 2]}),
    "nhwc": ({"input": [N, 32, 32, 3]}, {"features": [N, 8, 8, 32], "logits": [N, 10]}),
    "opzoo_a": ({"input": [N, 3, 32, 32]}, {"logits": [N, 10]}),
    "opzoo_b": ({"input": [N, 3, 32, 32]}, {"features": [N, 16, 32, 32], "logits": [N, 10]}),
}

CONV_BN = {"Conv", "BatchNormalization"}
HEAD = {"GlobalAveragePool", "Flatten", "Gemm"}
REQUIRED_OPS = {
    "resnet18": CONV_BN | HEAD | {"Relu", "MaxPool", "Add"},
    "resnet50": CONV_BN | HEAD | {"Relu", "MaxPool", "Add"},
    "resnext": CONV_BN | HEAD | {"Relu", "MaxPool", "Add"},
    "mobilenetv2": CONV_BN | HEAD | {"Clip", "Add", "Dropout"},
    "mobilenetv3": CONV_BN | HEAD | {"Relu", "HardSigmoid", "Mul", "Add", "Dropout"},
    "efficientnet": CONV_BN | HEAD | {"Sigmoid", "Mul", "Add", "Dropout"},
    "densenet": CONV_BN | HEAD | {"Relu", "Concat", "MaxPool", "AveragePool"},
    "shufflenetv2": CONV_BN | {"Relu", "MaxPool", "Split", "Concat", "Reshape", "Transpose", "ReduceMean", "Gemm"},
    "shufflenetv2_slice": CONV_BN | {"Relu", "Slice", "Concat", "Reshape", "Transpose", "ReduceMean", "Gemm"},
    "shufflenetv2_gather": CONV_BN | {"Relu", "Gather", "Concat", "Reshape", "Transpose", "ReduceMean", "Gemm"},
    "vgg": CONV_BN | {"Relu", "MaxPool", "Flatten", "Gemm", "Dropout"},
    "vgg_reshape": CONV_BN | {"Relu", "MaxPool", "Reshape", "Gemm", "Dropout"},
    "unet": CONV_BN | {"Relu", "MaxPool", "ConvTranspose", "Concat"},
    "yolo_neck": CONV_BN | {"Sigmoid", "Mul", "Split", "Concat", "Add", "MaxPool"},
    "nhwc": CONV_BN | {"Transpose", "Relu", "Add", "Clip", "Reshape", "MatMul"},
    "demo": CONV_BN | HEAD | {"Relu", "Add", "HardSigmoid", "Mul"},
    "opzoo_a": CONV_BN | {
        "InstanceNormalization", "PRelu", "LeakyRelu", "Identity", "Elu", "Dropout", "Selu", "Cast", "Softplus",
        "Relu", "Sqrt", "Tanh", "Erf", "Sigmoid", "HardSigmoid", "Clip", "Add", "Sub", "Mul", "Div", "Max",
        "Min", "Pow", "Sum", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
        "ReduceMean", "ReduceMax", "ReduceSum", "Unsqueeze", "Flatten", "Gemm"},
    "opzoo_b": CONV_BN | {
        "Relu", "Concat", "Split", "Slice", "Pad", "DepthToSpace", "SpaceToDepth", "Transpose", "MatMul", "Add",
        "Softmax", "LogSoftmax", "ConvTranspose", "MaxPool", "AveragePool", "GlobalAveragePool", "Squeeze",
        "Unsqueeze", "Gemm", "Sigmoid", "Mul", "Flatten", "Reshape", "Sum"},
}


def opset_ops(name: str, opset: int) -> set[str]:
    """Ops a model must hold only at some opsets (the op or its documented equivalent)."""
    ops = set()
    if name in ("mobilenetv3", "opzoo_a"):
        ops.add("HardSwish" if opset >= 14 else "HardSigmoid")
    if name == "opzoo_a":
        ops |= {"Mish"} if opset >= 18 else {"Softplus", "Tanh"}
        ops |= {"Gelu"} if opset >= 20 else {"Erf", "Div"}
    if name in ("yolo_neck", "opzoo_b"):
        ops.add("Upsample" if opset < 10 else "Resize")
    return ops


def op_types(model: onnx.ModelProto) -> set[str]:
    return {node.op_type for node in model.graph.node}


def declared(values) -> dict[str, list]:
    return {vi.name: [d.dim_value if d.HasField("dim_value") else d.dim_param
                      for d in vi.type.tensor_type.shape.dim] for vi in values}


def initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def attrs(node: onnx.NodeProto) -> dict:
    values = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in values.items()}


def std(array: np.ndarray) -> float:
    return float(np.asarray(array, np.float64).std())


# ---------------------------------------------------------------------- op forms per opset
def _form_ok(node: onnx.NodeProto, opset: int) -> bool:
    """The node has the input/attribute form its op has at ``opset``."""
    a, n_in, op = attrs(node), len(node.input), node.op_type
    if op == "Split":
        if opset < 13:
            return n_in == 1 and "split" in a
        return (n_in == 2) != ("num_outputs" in a) and (opset >= 18 or "num_outputs" not in a)
    axes_input_from = {"Squeeze": 13, "Unsqueeze": 13, "ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18}
    if op in axes_input_from:
        return ("axes" in a) == (opset < axes_input_from[op]) and (n_in == 2) == (opset >= axes_input_from[op])
    checks = {
        "Slice": lambda: ("starts" in a and n_in == 1) if opset < 10 else ("starts" not in a and n_in >= 3),
        "Pad": lambda: ("pads" in a and n_in == 1) if opset < 11 else ("pads" not in a and n_in >= 2),
        "Clip": lambda: ("min" in a and n_in == 1) if opset < 11 else ("min" not in a and n_in == 3),
        "Dropout": lambda: ("ratio" in a and n_in == 1) if opset < 12 else ("ratio" not in a and n_in == 2),
        "Upsample": lambda: opset < 10,
        "Resize": lambda: n_in == 2 if opset == 10 else (opset > 10 and n_in >= 3 and (opset >= 13 or node.input[1])),
        "DepthToSpace": lambda: ("mode" in a) == (opset >= 11),
        "HardSwish": lambda: opset >= 14, "Mish": lambda: opset >= 18, "Gelu": lambda: opset >= 20,
    }
    return checks.get(op, lambda: True)()


# ---------------------------------------------------------------------- every model, every opset
@pytest.mark.parametrize("opset", OPSETS)
@pytest.mark.parametrize("name", sorted(ZOO))
def test_model_is_valid_and_runs(name, opset):
    model = build(name, opset=opset, batch=N)
    onnx.checker.check_model(model, full_check=True)
    inputs, outputs = SHAPES[name]
    assert declared(model.graph.input) == inputs
    assert declared(model.graph.output) == outputs
    assert model.opset_import[0].version == opset
    missing = (REQUIRED_OPS[name] | opset_ops(name, opset)) - op_types(model)
    assert not missing, f"{name} at opset {opset} lacks {sorted(missing)}"
    bad_forms = [n.name for n in model.graph.node if not _form_ok(n, opset)]
    assert not bad_forms, f"wrong op form at opset {opset}: {bad_forms}"
    result = run(model, random_feeds(model, seed=1, dynamic=2))
    for out, shape in outputs.items():
        assert list(result[out].shape) == [2, *shape[1:]]
        assert np.isfinite(result[out]).all()
        assert STD_RANGE[0] <= std(result[out]) <= STD_RANGE[1], f"{out}: std {std(result[out])}"


# Models whose op forms compute the same at every opset, and the opsets to compare. opzoo_b
# differs on purpose below 13: LogSoftmax(axis=2) normalizes over H alone from opset 13 but
# over H*W (the input coerced to 2-D) before; below 11 DepthToSpace CRD does not exist (DCR
# is used twice) and Upsample/Resize-10 'linear' use other coordinates than half_pixel.
SAME_ACROSS = {name: (9, 13, 21) for name in ZOO if name != "opzoo_b"} | {"opzoo_b": (13, 18, 21)}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_op_forms_compute_the_same_at_every_opset(name):
    feeds = random_feeds(build(name), seed=2)
    first, *rest = [run(build(name, opset=opset), feeds) for opset in SAME_ACROSS[name]]
    for other in rest:
        for out in first:
            np.testing.assert_allclose(other[out], first[out], rtol=FORM_RTOL, atol=FORM_ATOL, err_msg=out)


# ---------------------------------------------------------------------- numbers inside the models
def with_all_outputs(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of the model with every float intermediate tensor added as a graph output."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    inferred = shape_inference.infer_shapes(model, strict_mode=True)
    known = {o.name for o in model.graph.output}
    floats = (TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.DOUBLE)
    model.graph.output.extend(vi for vi in inferred.graph.value_info
                              if vi.name not in known and vi.type.tensor_type.elem_type in floats)
    return model


@pytest.mark.parametrize("opset,keep_bn", [(17, True), (9, False)])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_activations_neither_vanish_nor_explode(name, opset, keep_bn):
    model = build(name, opset=opset, keep_bn=keep_bn)
    assert all(vi.type.tensor_type.shape.dim[0].dim_value == 1 for vi in [*model.graph.input, *model.graph.output])
    declared_outputs = len(model.graph.output)
    probed = with_all_outputs(model)
    result = run(probed, random_feeds(probed, seed=3))
    assert len(result) > declared_outputs + 5
    unhealthy = {k: std(v) for k, v in result.items()
                 if not np.isfinite(v).all() or (v.size > 1 and not STD_RANGE[0] <= std(v) <= STD_RANGE[1])}
    assert not unhealthy, f"tensors with std outside {STD_RANGE} or non-finite: {unhealthy}"


# ---------------------------------------------------------------------- seeds and BatchNormalization
def float_weights(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Float initializers drawn at random (not the fixed ``/const_i`` scales, shapes, bounds)."""
    return {k: v for k, v in initializers(model).items()
            if v.dtype == np.float32 and v.size > 1 and not k.rsplit("/", 1)[-1].startswith("const_")}


@pytest.mark.parametrize("name", sorted(ZOO))
def test_seed_fixes_every_weight(name):
    first, again, other = build(name, seed=5), build(name, seed=5), build(name, seed=6)
    assert first.SerializeToString() == again.SerializeToString()
    assert [n.op_type for n in other.graph.node] == [n.op_type for n in first.graph.node]
    a, b = float_weights(first), float_weights(other)
    assert a.keys() == b.keys() and len(a) >= 5
    same = [k for k in a if np.array_equal(a[k], b[k])]
    assert not same, f"weights that ignore the seed: {same}"


def bn_parameters(model: onnx.ModelProto) -> list[tuple[np.ndarray, ...]]:
    inits = initializers(model)
    return [tuple(inits[i] for i in n.input[1:5]) for n in model.graph.node if n.op_type == "BatchNormalization"]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_batchnorm_statistics_are_not_trivial(name):
    params = bn_parameters(build(name))
    assert len(params) >= 3
    for scale, bias, mean, var in params:
        assert 0.5 <= scale.min() and scale.max() <= 1.5 and std(scale) > 0.05
        assert std(bias) > 0.02 and std(mean) > 0.02 and np.abs(mean).max() > 0.05
        assert 0.5 <= var.min() and var.max() <= 2.0 and std(var) > 0.05


@pytest.mark.parametrize("name", sorted(ZOO))
def test_without_bn_every_normalized_conv_has_a_bias(name):
    with_bn, without = build(name, keep_bn=True), build(name, keep_bn=False)
    assert "BatchNormalization" not in op_types(without)
    feeds_bn = {n.input[0] for n in with_bn.graph.node if n.op_type == "BatchNormalization"}
    normalized = {n.name for n in with_bn.graph.node if n.op_type == "Conv" and n.output[0] in feeds_bn}
    convs = {n.name: n for n in without.graph.node if n.op_type == "Conv"}
    assert normalized and normalized <= convs.keys()
    assert all(len(convs[name].input) == 3 for name in normalized)


# ---------------------------------------------------------------------- full sizes: real parameter counts
# Learnable parameters of the torchvision implementations of the same architectures
# (resnet18, resnet50, resnext50_32x4d, mobilenet_v2, mobilenet_v3_small, efficientnet_b0,
# densenet121, shufflenet_v2_x1_0), BN running statistics excluded. "full" vgg (vgg16_bn,
# 138,365,992 parameters, ~550 MB, ~6 s to build) is left out: too slow for this file.
TORCHVISION_PARAMETERS = {
    "resnet18": 11_689_512, "resnet50": 25_557_032, "resnext": 25_028_904, "mobilenetv2": 3_504_872,
    "mobilenetv3": 2_542_856, "efficientnet": 5_288_548, "densenet": 7_978_856, "shufflenetv2": 2_278_604,
}


def learnable_parameters(model: onnx.ModelProto) -> int:
    stats = {n.input[i] for n in model.graph.node if n.op_type == "BatchNormalization" for i in (3, 4)}
    return sum(v.size for k, v in float_weights(model).items() if k not in stats)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMETERS))
def test_full_size_has_the_real_parameter_count(name):
    model = build(name, size="full")
    assert declared(model.graph.input)["input"] == [1, 3, 224, 224]
    assert declared(model.graph.output)["logits"] == [1, 1000]
    assert learnable_parameters(model) == TORCHVISION_PARAMETERS[name]


def test_full_resnet50_is_the_benchmark_size():
    model = build("resnet50", size="full")
    elements = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert 24_000_000 <= elements <= 27_000_000
    assert sum(n.op_type == "Conv" for n in model.graph.node) == 53
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == 53


# ---------------------------------------------------------------------- architecture details
def nodes_of(model: onnx.ModelProto, op: str) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.op_type == op]


def conv_kinds(model: onnx.ModelProto) -> set[str]:
    """'dense', 'depthwise', 'depthwise_x2', 'grouped' for each Conv in the model."""
    inits = initializers(model)
    kinds = set()
    for node in nodes_of(model, "Conv"):
        group, (cout, cin_per_group) = attrs(node)["group"], inits[node.input[1]].shape[:2]
        if group == 1:
            kinds.add("dense")
        elif cin_per_group == 1:
            kinds.add("depthwise" if cout == group else f"depthwise_x{cout // group}")
        else:
            kinds.add("grouped")
    return kinds


def test_architectures_have_their_conv_kinds():
    assert conv_kinds(build("resnet50")) == {"dense"}
    assert conv_kinds(build("resnext")) == {"dense", "grouped"}
    assert {attrs(n)["group"] for n in nodes_of(build("resnext"), "Conv")} == {1, 4}
    for name in ("mobilenetv2", "mobilenetv3", "efficientnet", "shufflenetv2", "nhwc"):
        assert conv_kinds(build(name)) == {"dense", "depthwise"}, name
    assert conv_kinds(build("opzoo_b")) == {"dense", "depthwise", "depthwise_x2", "grouped"}
    groups = {attrs(n)["group"] for n in nodes_of(build("unet"), "ConvTranspose")}
    assert groups == {1, 4}


def test_shufflenet_channel_split_variants_compute_the_same():
    models = {name: build(name, opset=13) for name in ("shufflenetv2", "shufflenetv2_slice", "shufflenetv2_gather")}
    assert "Split" not in op_types(models["shufflenetv2_slice"]) | op_types(models["shufflenetv2_gather"])
    assert "Slice" not in op_types(models["shufflenetv2"])
    feeds = random_feeds(models["shufflenetv2"])
    outs = [run(m, feeds)["logits"] for m in models.values()]
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_shufflenet_channel_shuffle_is_reshape_transpose_reshape():
    model = build("shufflenetv2")
    producer = {o: n for n in model.graph.node for o in n.output}
    inits = initializers(model)
    shuffles = 0
    for transpose in nodes_of(model, "Transpose"):
        before = producer[transpose.input[0]]
        assert attrs(transpose)["perm"] == [0, 2, 1, 3, 4] and before.op_type == "Reshape"
        assert list(inits[before.input[1]][:2]) == [-1, 2]
        shuffles += 1
    assert shuffles == sum((4, 8, 4))


def test_vgg_flattens_c_x_7_x_7_into_gemm():
    for name in ("vgg", "vgg_reshape"):
        model = build(name)
        biased = [len(n.input) == 3 for n in nodes_of(model, "Conv")]
        assert len(biased) == 8 and all(biased), "torchvision's VGG-BN keeps the conv bias before BN"
        first_gemm = nodes_of(model, "Gemm")[0]
        assert initializers(model)[first_gemm.input[1]].shape == (64, 64 * 7 * 7)
    feeds = random_feeds(build("vgg"))
    np.testing.assert_array_equal(*[run(build(name), feeds)["logits"] for name in ("vgg", "vgg_reshape")])


def test_nhwc_layout():
    model = build("nhwc", batch=N)
    first = model.graph.node[0]
    assert first.op_type == "Transpose" and attrs(first)["perm"] == [0, 3, 1, 2] and first.input[0] == "input"
    producer = {o: n for n in model.graph.node for o in n.output}
    assert producer["features"].op_type == "Transpose" and attrs(producer["features"])["perm"] == [0, 2, 3, 1]
    inits = initializers(model)
    reshape = next(n for n in nodes_of(model, "Reshape") if n.input[0] == "features")
    matmul = next(n for n in nodes_of(model, "MatMul") if n.input[0] == reshape.output[0])
    assert inits[matmul.input[1]].shape == (8 * 8 * 32, 10)
    bias_adds = [n for n in nodes_of(model, "Add") if producer[n.input[0]].op_type == "Transpose"]
    assert bias_adds and inits[bias_adds[0].input[1]].shape == (16,)


def test_yolo_neck_blocks():
    model = build("yolo_neck", opset=18)
    splits = nodes_of(model, "Split")
    assert len(splits) == 8 and all(attrs(s)["num_outputs"] == 2 for s in splits)
    pools = nodes_of(model, "MaxPool")
    assert len(pools) == 3 and all(attrs(p)["kernel_shape"] == [5, 5] and attrs(p)["strides"] == [1, 1] for p in pools)
    assert len(nodes_of(model, "Resize")) == 2
    assert all(len(n.input) == 2 for n in nodes_of(build("yolo_neck", opset=13), "Split"))


def test_mobilenetv3_gate_is_channelwise():
    model = build("mobilenetv3", opset=14)
    inferred = shape_inference.infer_shapes(model)
    shapes = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in inferred.graph.value_info}
    gates = [n for n in nodes_of(model, "Mul")
             if any(i.startswith("/features") and "HardSigmoid" in i for i in n.input)]
    assert len(gates) == 9
    for mul in gates:
        data, gate = mul.input
        assert shapes[gate][2:] == [1, 1] and shapes[gate][1] == shapes[data][1] and shapes[data][2] > 1


# ---------------------------------------------------------------------- op coverage models
def test_opzoo_binary_ops_use_channel_constants_and_two_activations():
    model = build("opzoo_a")
    inits = initializers(model)
    for op in ("Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "Sum"):
        nodes = nodes_of(model, op)
        constant = [n for n in nodes if any(inits.get(i, np.zeros(0)).shape == (16, 1, 1) for i in n.input)]
        tensors = [n for n in nodes if not any(i in inits for i in n.input)]
        assert constant and tensors, f"{op}: per-channel constant {len(constant)}, two tensors {len(tensors)}"
    assert inits[nodes_of(model, "PRelu")[0].input[1]].shape == (16, 1, 1)
    casts = {attrs(n)["to"] for n in nodes_of(model, "Cast")}
    assert casts == {TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.FLOAT}
    for op in ("ReduceMean", "ReduceMax", "ReduceSum"):
        assert {attrs(n)["keepdims"] for n in nodes_of(model, op)} == {0, 1}, op


def test_opzoo_layout_ops():
    model = build("opzoo_b", opset=13)
    assert {attrs(n)["mode"] for n in nodes_of(model, "DepthToSpace")} == {"DCR", "CRD"}
    assert {attrs(n)["mode"] for n in nodes_of(model, "Pad")} == {"constant", "reflect"}
    assert {attrs(n)["mode"] for n in nodes_of(model, "Resize")} == {"nearest", "linear"}
    assert {(attrs(n)["transA"], attrs(n)["transB"]) for n in nodes_of(model, "Gemm")} >= {(0, 0), (1, 1), (0, 1)}
    assert all(attrs(n)["axis"] not in (1, -3) for n in nodes_of(model, "Softmax") + nodes_of(model, "LogSoftmax"))
    assert all(attrs(n)["axis"] == 1 for n in nodes_of(model, "Split") + nodes_of(model, "Concat"))
    inits = initializers(model)
    assert [list(inits[n.input[3]]) for n in nodes_of(model, "Slice")] == [[1]]
    assert len(nodes_of(build("opzoo_b", opset=10), "DepthToSpace")) == 2
    sizes_form = [n for n in nodes_of(build("opzoo_b", opset=18), "Resize") if len(n.input) == 4]
    assert len(sizes_form) == 1 and attrs(sizes_form[0])["axes"] == [2, 3]


# ---------------------------------------------------------------------- demo and builder errors
def test_committed_demo_is_what_the_builder_writes(tmp_path):
    data = make_demo.DEMO_PATH.read_bytes()
    assert 100_000 < len(data) < 2_000_000
    assert make_demo.is_current()
    assert make_demo.write_demo(tmp_path / "demo.onnx").read_bytes() == data
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    assert len(nodes_of(model, "BatchNormalization")) >= 10
    assert declared(model.graph.input) == {"input": [1, 3, 64, 64]}
    assert run(model, random_feeds(model))["logits"].shape == (1, 10)
    assert make_demo.main(["--check"]) == 0
    assert make_demo.main(["--check", "-o", str(tmp_path / "absent.onnx")]) == 1


def test_builder_and_registry_refuse_what_they_cannot_build():
    for opset in (8, 22):
        with pytest.raises(ValueError, match="opset"):
            build("resnet18", opset=opset)
    with pytest.raises(KeyError, match="resnet18"):
        build("resnet19")
    with pytest.raises(ValueError, match="size"):
        build("resnet18", size="tiny")
    with pytest.raises(ValueError, match="batch"):
        build("resnet18", batch=0)
    with pytest.raises(ValueError, match="opset >= 11"):
        GraphBuilder("t", opset=10).depth_to_space("x", 2, "CRD")
