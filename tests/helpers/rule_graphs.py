"""Small hand-made graphs for the rules' tests: an index over nodes given as protos."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from graphprune.graph.index import GraphIndex
from graphprune.graph.model import from_proto

MS = "com.microsoft"


def graph(nodes, inputs, outputs, inits=(), opset=23, ms=False) -> GraphIndex:
    g = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(MS, 1)] if ms else [])
    return GraphIndex(from_proto(helper.make_model(g, opset_imports=opsets)))


def tensor(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def ints(name, values):
    return onnx.numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)
