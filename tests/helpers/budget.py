"""Models with planted sensitivity for the budget search and the drift gate.

``planted_chain``: x[B,16] -> Gemm -> Tanh -> Gemm -> Tanh -> Gemm -> Tanh -> Gemm -> y[B,8]; the
three hidden layers of 32 channels are the prunable groups. In an *insensitive* layer, half of
the channels (every odd one) are nearly dead: their producer rows and biases are scaled by 1e-4,
so they carry about 1e-4 of a live channel's signal; removing them moves the outputs by ~1e-4
relative, removing four live channels by more than 1 %. In a *sensitive* layer every channel is
live (tanh has no dead zone: every live channel varies with the input).
"""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

HIDDEN = 32
INPUTS, OUTPUTS = 16, 8
#: the nearly dead channels of an insensitive layer
DEAD = tuple(range(1, HIDDEN, 2))


def planted_chain(insensitive=(0, 2), seed: int = 0):
    """The chain with hidden layers ``insensitive`` (0, 1, 2) half dead; returns the ModelProto."""
    rng = np.random.default_rng(seed)
    sizes = [INPUTS, HIDDEN, HIDDEN, HIDDEN, OUTPUTS]
    nodes, inits, current = [], [], "x"
    for i in range(4):
        w = (rng.standard_normal((sizes[i + 1], sizes[i])) / np.sqrt(sizes[i])).astype(np.float32)
        b = (0.1 * rng.standard_normal(sizes[i + 1])).astype(np.float32)
        if i < 3 and i in insensitive:
            w[list(DEAD)] *= 1e-4
            b[list(DEAD)] *= 1e-4
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "y" if i == 3 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out], name=f"fc{i}", transB=1))
        if i < 3:
            nodes.append(helper.make_node("Tanh", [out], [f"r{i}"], name=f"tanh{i}"))
            current = f"r{i}"
    graph = helper.make_graph(nodes, "planted", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, INPUTS])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUTPUTS])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def calibration_arrays(count: int = 40, seed: int = 1) -> dict:
    """``count`` seeded samples of x, stacked (an .npz-able dict)."""
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((count, 1, INPUTS)).astype(np.float32)}
