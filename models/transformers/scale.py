"""Large transformer exports for benchmarks: a ~1 B-parameter Llama on disk, and long node chains.

    python -m models.transformers.scale llama-1b OUT_DIR [--style dynamo]   # ~4.4 GB of weights
    python -m models.transformers.scale chain 20000 OUT.onnx                 # >= 20 000 nodes

:func:`write_llama` builds the ``llama`` architecture with an :class:`ExternalDataBuilder`, which
writes every large initializer to the external-data file the moment it is drawn and keeps only
its location, so the builder never holds more than one weight (the technique of
``benchmarks/bench_memory.py``). :func:`transformer_chain` repeats small Llama layers until the
graph has at least the asked number of nodes (for graph-size speed benchmarks).

Benchmarks only: tests build the 1 B writer with a tiny configuration and nothing larger.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import BinaryIO

import numpy as np
import onnx
from onnx import TensorProto, helper

from models.transformers.common import TransformerBuilder
from models.transformers.llama import LlamaConfig, llama_decoder
from models.transformers.registry import build_transformer

LOG = logging.getLogger(__name__)
#: TinyLlama-1.1B's shape: 1.1 B parameters, GQA 32 query / 4 KV heads
LLAMA_1B = LlamaConfig(hidden=2048, heads=32, kv_heads=4, layers=22, intermediate=5632, vocab=32000,
                       positions=2048)
#: the same layout in miniature, for tests of the writer
LLAMA_TINY = LlamaConfig(hidden=32, heads=8, kv_heads=4, layers=2, intermediate=48, vocab=64, positions=16)
#: initializers with fewer elements stay inside the model file (shape constants, scalars)
EXTERNAL_MIN_ELEMENTS = 1024
#: the per-layer width of :func:`transformer_chain` (small weights, many nodes)
CHAIN_WIDTH = dict(hidden=16, heads=4, kv_heads=2, intermediate=24, vocab=32, positions=16)


class ExternalDataBuilder(TransformerBuilder):
    """A :class:`TransformerBuilder` that streams large initializers into ``data`` as it draws them."""

    def __init__(self, name: str, *, data: BinaryIO, location: str, min_elements: int = EXTERNAL_MIN_ELEMENTS,
                 **kw):
        super().__init__(name, **kw)
        self.data, self.location, self.min_elements = data, location, min_elements
        self.offset = 0

    def add_initializer(self, name: str, array: np.ndarray) -> str:
        if array.size < self.min_elements:
            return super().add_initializer(name, array)
        raw = np.ascontiguousarray(array).tobytes()
        self.data.write(raw)
        tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype),
                             dims=array.shape, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", self.location), ("offset", str(self.offset)), ("length", str(len(raw)))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(tensor)
        self.offset += len(raw)
        return name


def write_llama(folder: Path, cfg: LlamaConfig = LLAMA_1B, *, style: str = "torchscript", seed: int = 0,
                batch="batch", sequence="sequence") -> tuple[Path, int]:
    """Write ``folder/llama.onnx`` + ``llama.onnx.data``; returns (model path, external bytes)."""
    path = Path(folder) / "llama.onnx"
    location = path.name + ".data"
    with open(path.with_name(location), "wb") as data:
        b = ExternalDataBuilder("llama", data=data, location=location, style=style, seed=seed, batch=batch,
                                sequence=sequence)
        llama_decoder(b, cfg)
        model = b.finish(doc=f"graphprune reference transformer llama ({style}, {cfg}), seed {seed}")
    path.write_bytes(model.SerializeToString())
    LOG.info("wrote %s: %d nodes, %.2f GB of external weights", path, len(model.graph.node), b.offset / 1e9)
    return path, b.offset


def llama_parameters(cfg: LlamaConfig) -> int:
    """Parameters of the ``llama`` architecture with ``cfg`` (embedding, layers, norm, LM head)."""
    kv = cfg.kv_heads * cfg.head_dim
    attention = cfg.hidden * (2 * cfg.hidden + 2 * kv)
    layer = attention + 3 * cfg.hidden * cfg.intermediate + 2 * cfg.hidden
    return 2 * cfg.vocab * cfg.hidden + cfg.layers * layer + cfg.hidden


def transformer_chain(nodes: int, *, style: str = "torchscript", seed: int = 0) -> onnx.ModelProto:
    """A small-width Llama export with at least ``nodes`` nodes (fewer than one layer more)."""
    if nodes < 1:
        raise ValueError(f"nodes must be positive, got {nodes}")
    counts = [len(build_transformer("llama", style=style, seed=seed, layers=n, **CHAIN_WIDTH).graph.node)
              for n in (1, 2)]
    per_layer = counts[1] - counts[0]
    layers = max(1, math.ceil((nodes - (counts[0] - per_layer)) / per_layer))
    return build_transformer("llama", style=style, seed=seed, layers=layers, **CHAIN_WIDTH)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    big = commands.add_parser("llama-1b", help="write the ~1 B-parameter Llama with external data")
    big.add_argument("folder", type=Path)
    big.add_argument("--style", default="torchscript", choices=("torchscript", "dynamo"))
    chain = commands.add_parser("chain", help="write a transformer export of at least N nodes")
    chain.add_argument("nodes", type=int)
    chain.add_argument("output", type=Path)
    chain.add_argument("--style", default="torchscript", choices=("torchscript", "dynamo"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "llama-1b":
        args.folder.mkdir(parents=True, exist_ok=True)
        LOG.info("%d parameters", llama_parameters(LLAMA_1B))
        write_llama(args.folder, style=args.style)
        return 0
    model = transformer_chain(args.nodes, style=args.style)
    args.output.write_bytes(model.SerializeToString())
    LOG.info("wrote %s: %d nodes", args.output, len(model.graph.node))
    return 0


if __name__ == "__main__":
    sys.exit(main())
