"""Small graph indexes and seeded calibration statistics for the importance tests."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from graphprune.calibration import CalibrationStats
from graphprune.graph.index import GraphIndex
from graphprune.graph.model import from_proto


def small_index(nodes, inputs, outputs, initializers) -> GraphIndex:
    """The index of an opset-17 graph of ``nodes`` (inputs: (name, shape); initializers: name -> array)."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in outputs],
                              [numpy_helper.from_array(a, n) for n, a in initializers.items()])
    return GraphIndex(from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])))


def seeded_stats(rng, shapes: dict) -> tuple[CalibrationStats, dict]:
    """Statistics of seeded activations with channel-dependent means and scales, and the activations."""
    stats, arrays = CalibrationStats(), {}
    for space, shape in shapes.items():
        size = shape[space.axis]
        view = [size if axis == space.axis else 1 for axis in range(len(shape))]
        x = (rng.standard_normal(shape) * rng.uniform(0.5, 3.0, size).reshape(view)
             + rng.uniform(-2.0, 2.0, size).reshape(view))
        stats.add_space(space, size).update(x)
        arrays[space] = np.moveaxis(x, space.axis, -1).reshape(-1, size)
    return stats, arrays
