"""How long ``fold`` takes as graphs grow: a chain of Conv -> BN -> Mul -> Add -> Relu blocks.

    python benchmarks/bench_fold.py            # 250, 1000 and 4000 blocks
    python benchmarks/bench_fold.py 20000      # one size

Prints blocks, nodes, seconds and nodes per second; folding should stay close to linear in the
node count (each fold edits a constant number of nodes; the graph is compacted once per pass).
"""
from __future__ import annotations

import sys
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from graphprune.graph.model import from_proto
from graphprune.passes.fold import fold

CHANNELS = 8


def chain_model(blocks: int, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def const(name, shape, low=None, high=None):
        value = rng.uniform(low, high, shape) if low is not None else rng.standard_normal(shape) * 0.3
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    x = "x"
    for i in range(blocks):
        c = CHANNELS
        conv = helper.make_node("Conv", [x, const(f"w{i}", (c, c, 1, 1))], [f"c{i}"], name=f"conv{i}")
        bn = helper.make_node("BatchNormalization", [f"c{i}", const(f"g{i}", (c,), 0.5, 1.5), const(f"b{i}", (c,)),
                                                     const(f"m{i}", (c,)), const(f"v{i}", (c,), 0.5, 2.0)],
                              [f"n{i}"], name=f"bn{i}")
        mul = helper.make_node("Mul", [f"n{i}", const(f"s{i}", (c, 1, 1), 0.5, 1.5)], [f"p{i}"], name=f"mul{i}")
        add = helper.make_node("Add", [f"p{i}", const(f"t{i}", (c, 1, 1))], [f"q{i}"], name=f"add{i}")
        relu = helper.make_node("Relu", [f"q{i}"], [f"r{i}"], name=f"relu{i}")
        nodes += [conv, bn, mul, add, relu]
        x = f"r{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, CHANNELS, 4, 4])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, CHANNELS, 4, 4])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def bench(blocks: int) -> None:
    proto = chain_model(blocks)
    nodes = len(proto.graph.node)
    start = time.perf_counter()
    model = from_proto(proto)
    result = fold(model)
    seconds = time.perf_counter() - start
    assert result.batchnorm_after == 0 and len(model.graph) == 2 * blocks  # Conv + Relu per block
    print(f"{blocks:>7} blocks {nodes:>7} nodes {seconds:8.2f} s {nodes / seconds:>10.0f} nodes/s")


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("blocks", nargs="*", type=int, default=[250, 1000, 4000],
                        help="chain lengths in blocks (default 250 1000 4000)")
    for size in parser.parse_args(argv).blocks:
        bench(size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
