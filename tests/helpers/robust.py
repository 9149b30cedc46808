"""Small models for the robustness tests: a valid CNN, its broken variants and unusual-but-valid graphs.

Every unusual model is the same prunable stem (``x -> c1 -> relu1 -> c2 -> relu2``, 8 channels
between c1 and c2) followed by the unusual part and a last Conv ``c4`` to the output. The stem's
group must prune whatever follows; the groups touching the unusual node must be blocked with a
reason naming it.
"""
from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from graphprune.cli import main

#: the stem's first group: c1's output channels (space of c1's weight axis 0)
STEM_WEIGHT = "w1"
STEM_CHANNELS = 8


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``graphprune *args`` in-process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line(err: str, pattern: str) -> None:
    """``err`` is exactly one line and it matches ``pattern``."""
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    assert re.fullmatch(pattern, lines[0]), f"{lines[0]!r} does not match {pattern!r}"


def weight(name: str, *shape, dtype=np.float32, seed: int = 0) -> onnx.TensorProto:
    rng = np.random.default_rng([zlib.crc32(name.encode()), seed])
    return nh.from_array((rng.standard_normal(shape) * 0.3).astype(dtype), name)


def make(nodes, inputs, outputs, inits, *, opsets=(("", 17),), ir: int = 8) -> onnx.ModelProto:
    graph = h.make_graph(nodes, "g", inputs, outputs, inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid(d, v) for d, v in opsets])
    model.ir_version = ir
    return model


def image(name: str = "x", channels: int = 3, size: int = 8, elem=T.FLOAT, batch=1) -> onnx.ValueInfoProto:
    return h.make_tensor_value_info(name, elem, [batch, channels, size, size])


def conv(x: str, w: str, y: str, name: str, b: str | None = None) -> onnx.NodeProto:
    return h.make_node("Conv", [x, w] + ([b] if b else []), [y], name=name, pads=[1, 1, 1, 1])


def stem() -> tuple[list, list]:
    nodes = [conv("x", "w1", "a1", "c1", "b1"), h.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             conv("r1", "w2", "a2", "c2", "b2"), h.make_node("Relu", ["a2"], ["r2"], name="relu2")]
    inits = [weight("w1", 8, 3, 3, 3), weight("b1", 8), weight("w2", 8, 8, 3, 3), weight("b2", 8)]
    return nodes, inits


def small_cnn(opset: int = 17, ir: int = 8) -> onnx.ModelProto:
    """stem -> c4 (4 channels) -> y; two prunable groups (c1 and c2 outputs)."""
    nodes, inits = stem()
    nodes.append(conv("r2", "w4", "y", "c4"))
    inits.append(weight("w4", 4, 8, 3, 3))
    return make(nodes, [image()], [image("y", 4)], inits, opsets=(("", opset),), ir=ir)


def save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def rich_model() -> onnx.ModelProto:
    """stem with a BatchNormalization after c1, c4, then a model-local function ``local.Twice`` -> y;
    every field a model can carry is set (producer, domain, docs, metadata, value_info, opsets)."""
    nodes, inits = stem()
    nodes.insert(1, h.make_node("BatchNormalization", ["a1", "bn_scale", "bn_bias", "bn_mean", "bn_var"], ["a1n"],
                                name="bn1", epsilon=1e-5))
    nodes[2].input[0] = "a1n"
    nodes += [conv("r2", "w4", "a4", "c4"), h.make_node("Twice", ["a4"], ["y"], name="twice", domain="local")]
    inits += [weight("w4", 4, 8, 3, 3), nh.from_array(np.linspace(0.5, 1.5, 8, dtype=np.float32), "bn_scale"),
              weight("bn_bias", 8), weight("bn_mean", 8),
              nh.from_array(np.linspace(0.5, 2.0, 8, dtype=np.float32), "bn_var")]
    twice = h.make_function("local", "Twice", ["x"], ["z"], [h.make_node("Add", ["x", "x"], ["z"])],
                            [h.make_opsetid("", 17)])
    model = make(nodes, [image(batch="N")], [image("y", 4, batch="N")], inits,
                    opsets=(("", 17), ("local", 1), ("ai.onnx.ml", 3)))
    model.functions.append(twice)
    model.producer_name, model.producer_version = "exporter", "9.9.1"
    model.domain, model.model_version = "org.example.vision", 7
    model.doc_string, model.graph.doc_string, model.graph.name = "model doc", "graph doc", "net"
    h.set_model_props(model, {"author": "someone", "license": "MIT"})
    model.graph.input[0].doc_string = "image, NCHW"
    model.graph.output[0].doc_string = "feature map"
    model.graph.value_info.extend([h.make_tensor_value_info("r1", T.FLOAT, ["N", 8, 8, 8]),
                                   h.make_tensor_value_info("a4", T.FLOAT, ["N", 4, 8, 8])])
    for node in model.graph.node:
        node.doc_string = f"doc of {node.name}"
    for t in model.graph.initializer:
        t.doc_string = f"weight {t.name}"
    return model


# --------------------------------------------------------------------------- invalid graphs
def dangling_input() -> onnx.ModelProto:
    m = small_cnn()
    m.graph.node[1].input.append("ghost")  # Relu reads a tensor nobody defines
    m.graph.node[1].op_type = "Add"
    return m


def cycle() -> onnx.ModelProto:
    m = small_cnn()
    relu1 = m.graph.node[1]
    relu1.op_type = "Add"
    relu1.input.append("r2")  # relu1 reads relu2's output, which depends on relu1
    return m


def self_loop() -> onnx.ModelProto:
    m = small_cnn()
    m.graph.node[1].op_type = "Add"
    m.graph.node[1].input.append("r1")  # relu1 reads its own output
    return m


def dangling_in_subgraph() -> onnx.ModelProto:
    """An If whose then-branch reads a tensor defined nowhere."""
    m = if_node()
    branch = next(n for n in m.graph.node if n.op_type == "If")
    then_branch = next(a for a in branch.attribute if a.name == "then_branch").g
    then_branch.node[0].input[0] = "phantom"
    return m


def duplicate_output_name() -> onnx.ModelProto:
    m = small_cnn()
    m.graph.node[3].output[0] = "r1"  # relu2 writes r1, already written by relu1
    m.graph.node[4].input[0] = "r1"
    return m


def duplicate_graph_output() -> onnx.ModelProto:
    m = small_cnn()
    m.graph.output.add().CopyFrom(m.graph.output[0])
    return m


def output_not_produced() -> onnx.ModelProto:
    m = small_cnn()
    m.graph.output[0].name = "nowhere"
    return m


def unknown_element_type() -> onnx.ModelProto:
    m = small_cnn()
    m.graph.initializer[1].data_type = 99
    return m


def non_utf8_name() -> bytes:
    """small_cnn's bytes with node name 'relu1' replaced by 5 bytes that are not UTF-8."""
    data = small_cnn().SerializeToString()
    name = b"\x1a\x05relu1"  # NodeProto field 3 (name), length 5
    assert data.count(name) == 1, "the node name must occur once"
    return data.replace(name, b"\x1a\x05\xff\xfe\xfd\xfc\xfb")


def unsorted() -> onnx.ModelProto:
    """Valid except that the nodes are listed in reverse order."""
    m = small_cnn()
    nodes = [onnx.NodeProto() for _ in m.graph.node]
    for copy, node in zip(nodes, reversed(m.graph.node)):
        copy.CopyFrom(node)
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    return m


def bad_attribute() -> onnx.ModelProto:
    m = small_cnn()
    attr = next(a for a in m.graph.node[0].attribute if a.name == "pads")
    del attr.ints[-1]  # 3 pads for a 2-D conv
    return m


def with_versions(opset: int | None = None, ir: int | None = None) -> onnx.ModelProto:
    m = small_cnn()
    if opset is not None:
        m.opset_import[0].version = opset
    if ir is not None:
        m.ir_version = ir
    return m


# --------------------------------------------------------------------------- unusual but valid
def _tail(nodes, inits, extra_nodes, extra_inits, *, last_input: str, inputs=None, opsets=(("", 17),), ir=8):
    nodes = nodes + extra_nodes + [conv(last_input, "w4", "y", "c4")]
    inits = inits + extra_inits + [weight("w4", 4, 8, 3, 3)]
    return make(nodes, inputs or [image()], [image("y", 4)], inits, opsets=opsets, ir=ir)


def fused_conv() -> onnx.ModelProto:
    """com.microsoft FusedConv (ORT CPU contrib op) between the stem and c4."""
    nodes, inits = stem()
    fused = h.make_node("FusedConv", ["r2", "w3", "b3"], ["a3"], name="fused", domain="com.microsoft",
                        activation="Relu", pads=[1, 1, 1, 1])
    return _tail(nodes, inits, [fused], [weight("w3", 8, 8, 3, 3), weight("b3", 8)], last_input="a3",
                 opsets=(("", 17), ("com.microsoft", 1)))


def custom_domain() -> onnx.ModelProto:
    """An op of a custom domain onnxruntime has no kernel for."""
    nodes, inits = stem()
    swish = h.make_node("Swish", ["r2"], ["a3"], name="custom_swish", domain="my.ops")
    return _tail(nodes, inits, [swish], [], last_input="a3", opsets=(("", 17), ("my.ops", 1)))


def if_node() -> onnx.ModelProto:
    nodes, inits = stem()
    out = h.make_tensor_value_info
    then_g = h.make_graph([h.make_node("Relu", ["r2"], ["t"], name="then_relu")], "then", [],
                          [out("t", T.FLOAT, [1, 8, 8, 8])])
    else_g = h.make_graph([h.make_node("Sigmoid", ["r2"], ["e"], name="else_sigmoid")], "else", [],
                          [out("e", T.FLOAT, [1, 8, 8, 8])])
    branch = h.make_node("If", ["cond"], ["a3"], name="branch", then_branch=then_g, else_branch=else_g)
    return _tail(nodes, inits, [branch], [], last_input="a3",
                 inputs=[image(), h.make_tensor_value_info("cond", T.BOOL, [])])


def loop_node() -> onnx.ModelProto:
    nodes, inits = stem()
    vi = h.make_tensor_value_info
    body = h.make_graph(
        [h.make_node("Identity", ["cond_in"], ["cond_out"], name="body_identity"),
         h.make_node("Relu", ["acc_in"], ["acc_out"], name="body_relu")], "body",
        [vi("iter", T.INT64, []), vi("cond_in", T.BOOL, []), vi("acc_in", T.FLOAT, [1, 8, 8, 8])],
        [vi("cond_out", T.BOOL, []), vi("acc_out", T.FLOAT, [1, 8, 8, 8])])
    loop = h.make_node("Loop", ["trip", "", "r2"], ["a3"], name="loop", body=body)
    return _tail(nodes, inits, [loop], [nh.from_array(np.array(2, np.int64), "trip")], last_input="a3")


def scan_node() -> onnx.ModelProto:
    """Scan over the channel axis of the stem's output (a running sum per channel)."""
    nodes, inits = stem()
    vi = h.make_tensor_value_info
    body = h.make_graph(
        [h.make_node("Add", ["s_in", "elem"], ["s_out"], name="scan_add"),
         h.make_node("Identity", ["s_out"], ["o"], name="scan_identity")], "scan_body",
        [vi("s_in", T.FLOAT, [1, 8, 8]), vi("elem", T.FLOAT, [1, 8, 8])],
        [vi("s_out", T.FLOAT, [1, 8, 8]), vi("o", T.FLOAT, [1, 8, 8])])
    scan = h.make_node("Scan", ["init", "r2"], ["final", "a3"], name="scan", body=body, num_scan_inputs=1,
                       scan_input_axes=[1], scan_output_axes=[1])
    return _tail(nodes, inits, [scan], [nh.from_array(np.zeros((1, 8, 8), np.float32), "init")], last_input="a3")


def _q(name: str, value, dtype) -> onnx.TensorProto:
    return nh.from_array(np.array(value, dtype), name)


def qdq(opset: int = 21) -> onnx.ModelProto:
    """QDQ: activations quantized/dequantized, c3's weight int8 behind a per-channel DequantizeLinear."""
    nodes, inits = stem()
    rng = np.random.default_rng(3)
    extra = [h.make_node("QuantizeLinear", ["r2", "xs", "xz"], ["q"], name="quantize_act"),
             h.make_node("DequantizeLinear", ["q", "xs", "xz"], ["dq"], name="dequantize_act"),
             h.make_node("DequantizeLinear", ["w3_q", "ws", "wz"], ["w3"], name="dequantize_w3", axis=0),
             conv("dq", "w3", "a3", "c3"), h.make_node("Relu", ["a3"], ["r3"], name="relu3")]
    extra_inits = [nh.from_array(rng.integers(-100, 100, (8, 8, 3, 3)).astype(np.int8), "w3_q"),
                   _q("xs", 0.05, np.float32), _q("xz", 0, np.int8), _q("ws", np.full(8, 0.01), np.float32),
                   _q("wz", np.zeros(8), np.int8)]
    return _tail(nodes, inits, extra, extra_inits, last_input="r3", opsets=(("", opset),))


def qlinear_conv() -> onnx.ModelProto:
    nodes, inits = stem()
    rng = np.random.default_rng(4)
    extra = [h.make_node("QuantizeLinear", ["r2", "xs", "xz"], ["q"], name="quantize_act"),
             h.make_node("QLinearConv", ["q", "xs", "xz", "w3_q", "ws", "wz", "ys", "yz"], ["qy"], name="qconv",
                         pads=[1, 1, 1, 1]),
             h.make_node("DequantizeLinear", ["qy", "ys", "yz"], ["a3"], name="dequantize_out")]
    extra_inits = [nh.from_array(rng.integers(0, 255, (8, 8, 3, 3)).astype(np.uint8), "w3_q"),
                   _q("xs", 0.05, np.float32), _q("xz", 128, np.uint8), _q("ws", 0.01, np.float32),
                   _q("wz", 128, np.uint8), _q("ys", 0.1, np.float32), _q("yz", 128, np.uint8)]
    return _tail(nodes, inits, extra, extra_inits, last_input="a3")


def conv_integer() -> onnx.ModelProto:
    nodes, inits = stem()
    rng = np.random.default_rng(5)
    extra = [h.make_node("QuantizeLinear", ["r2", "xs", "xz"], ["q"], name="quantize_act"),
             h.make_node("ConvInteger", ["q", "w3_q", "xz", "wz"], ["ci"], name="conv_integer", pads=[1, 1, 1, 1]),
             h.make_node("Cast", ["ci"], ["a3"], name="cast_out", to=T.FLOAT)]
    extra_inits = [nh.from_array(rng.integers(0, 255, (8, 8, 3, 3)).astype(np.uint8), "w3_q"),
                   _q("xs", 0.05, np.float32), _q("xz", 128, np.uint8), _q("wz", 128, np.uint8)]
    return _tail(nodes, inits, extra, extra_inits, last_input="a3")


def float16_cnn() -> onnx.ModelProto:
    """The small CNN with every weight (and the input/output) in float16."""
    nodes, _ = stem()
    nodes.append(conv("r2", "w4", "y", "c4"))
    f16 = np.float16
    inits = [weight("w1", 8, 3, 3, 3, dtype=f16), weight("b1", 8, dtype=f16), weight("w2", 8, 8, 3, 3, dtype=f16),
             weight("b2", 8, dtype=f16), weight("w4", 4, 8, 3, 3, dtype=f16)]
    return make(nodes, [image(elem=T.FLOAT16)], [image("y", 4, elem=T.FLOAT16)], inits)


def bfloat16_mlp() -> onnx.ModelProto:
    """x[1, 16] -> MatMul(16x32) -> Add -> Relu -> MatMul(32x8), all bfloat16 (Conv has no bfloat16 form)."""
    bf16 = onnx.helper.tensor_dtype_to_np_dtype(T.BFLOAT16)
    vi = h.make_tensor_value_info
    nodes = [h.make_node("MatMul", ["x", "w1"], ["m1"], name="fc1"),
             h.make_node("Add", ["m1", "b1"], ["a1"], name="bias1"),
             h.make_node("Relu", ["a1"], ["r1"], name="relu1"), h.make_node("MatMul", ["r1", "w2"], ["y"], name="fc2")]
    inits = [weight("w1", 16, 32, dtype=bf16), weight("b1", 32, dtype=bf16), weight("w2", 32, 8, dtype=bf16)]
    return make(nodes, [vi("x", T.BFLOAT16, [1, 16])], [vi("y", T.BFLOAT16, [1, 8])], inits)


def several_inputs_outputs() -> onnx.ModelProto:
    """Two inputs, two outputs: a second branch from x2 joins the stem by a residual Add."""
    nodes, inits = stem()
    nodes += [conv("x2", "w5", "a5", "c5"), h.make_node("Relu", ["a5"], ["r5"], name="relu5"),
              conv("r5", "w6", "a6", "c6"), h.make_node("Add", ["r2", "a6"], ["s"], name="join"),
              conv("s", "w4", "y", "c4"), h.make_node("GlobalAveragePool", ["r5"], ["y2"], name="pool")]
    inits += [weight("w5", 6, 3, 3, 3), weight("w6", 8, 6, 3, 3), weight("w4", 4, 8, 3, 3)]
    return make(nodes, [image(), image("x2")], [image("y", 4), h.make_tensor_value_info("y2", T.FLOAT, [1, 6, 1, 1])],
                inits)


def initializers_as_inputs() -> onnx.ModelProto:
    """Old IR (3, opset 9): every initializer is also declared as a graph input."""
    m = small_cnn(opset=9, ir=3)
    for t in m.graph.initializer:
        m.graph.input.append(h.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    return m


def shape_subgraph() -> onnx.ModelProto:
    """A dynamic batch flattened by Reshape(x, Concat(Shape(x)[0], -1)) into a Gemm (int64 shape ops)."""
    nodes, inits = stem()
    nodes += [h.make_node("Shape", ["r2"], ["shape"], name="shape"),
              h.make_node("Gather", ["shape", "zero"], ["batch"], name="batch_dim", axis=0),
              h.make_node("Unsqueeze", ["batch", "axes0"], ["batch1"], name="batch_1d"),
              h.make_node("Concat", ["batch1", "minus_one"], ["new_shape"], name="new_shape", axis=0),
              h.make_node("Reshape", ["r2", "new_shape"], ["flat"], name="flatten"),
              h.make_node("Gemm", ["flat", "wg", "bg"], ["y"], name="fc", transB=1)]
    inits += [nh.from_array(np.array(0, np.int64), "zero"), nh.from_array(np.array([0], np.int64), "axes0"),
              nh.from_array(np.array([-1], np.int64), "minus_one"), weight("wg", 5, 8 * 8 * 8), weight("bg", 5)]
    return make(nodes, [image(batch="N")], [h.make_tensor_value_info("y", T.FLOAT, ["N", 5])], inits)


def transformer_block() -> onnx.ModelProto:
    """MLP (16 -> 32 -> 16, prunable hidden) + com.microsoft SkipLayerNormalization and Attention."""
    vi = h.make_tensor_value_info
    nodes = [h.make_node("MatMul", ["x", "w_up"], ["up"], name="up"),
             h.make_node("Add", ["up", "b_up"], ["up_b"], name="up_bias"),
             h.make_node("Relu", ["up_b"], ["act"], name="act"),
             h.make_node("MatMul", ["act", "w_down"], ["down"], name="down"),
             h.make_node("SkipLayerNormalization", ["down", "x", "gamma", "beta"], ["normed"], name="skip_ln",
                         domain="com.microsoft", epsilon=1e-5),
             h.make_node("Attention", ["normed", "w_qkv", "b_qkv"], ["y"], name="attention", domain="com.microsoft",
                         num_heads=2)]
    inits = [weight("w_up", 16, 32), weight("b_up", 32), weight("w_down", 32, 16), weight("gamma", 16),
             weight("beta", 16), weight("w_qkv", 16, 48), weight("b_qkv", 48)]
    return make(nodes, [vi("x", T.FLOAT, [1, 4, 16])], [vi("y", T.FLOAT, [1, 4, 16])], inits,
                opsets=(("", 17), ("com.microsoft", 1)))
