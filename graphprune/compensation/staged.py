"""Run a model stage by stage over the calibration samples: layer-by-layer repairs at the cost of one pass.

A layer-by-layer repair measures layer ``d`` of a model whose layers before ``d`` it has already
repaired. Running the whole model once per layer costs one pass per layer; instead the graph is
cut into **stages** once: :func:`partition` gives every node the number of *boundary* nodes (the
nodes the repair changes) on the longest path above it, so a stage only reads tensors of its own
and earlier stages. :class:`StagedRun` keeps, for every sample, the tensors later stages read
(the graph inputs first) and runs one stage at a time as a small model of that stage's nodes; a
tensor is dropped after the last stage that reads it. Between stages the repair measures the
cached tensors, and changes what comes next through the stage's own small model (new values of
initializers, a constant added after a node's output) or by rewriting a cached tensor, so the
graph itself is edited once, when every stage has run.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from ..validation.runner import make_session, run_session


def _outer_reads(node: onnx.NodeProto) -> set[str]:
    """Names of outer tensors read by the subgraphs of ``node`` (any depth; iterative)."""
    read, defined = set(), set()
    stack = [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
    stack += [g for a in node.attribute if a.type == onnx.AttributeProto.GRAPHS for g in a.graphs]
    while stack:
        graph = stack.pop()
        defined.update(v.name for v in graph.input)
        defined.update(t.name for t in graph.initializer)
        for n in graph.node:
            read.update(t for t in n.input if t)
            defined.update(t for t in n.output if t)
            stack += [a.g for a in n.attribute if a.type == onnx.AttributeProto.GRAPH]
            stack += [g for a in n.attribute if a.type == onnx.AttributeProto.GRAPHS for g in a.graphs]
        read.update(v.name for v in graph.output)
    return read - defined


@dataclass
class Stages:
    """``stage_of[i]``: the stage of ``model.graph.node[i]``; ``last_read[t]``: the last stage reading ``t``."""

    model: onnx.ModelProto
    stage_of: list = field(default_factory=list)
    reads: list = field(default_factory=list)       # per node: every tensor it reads (outer reads included)
    last_read: dict = field(default_factory=dict)
    count: int = 0


def partition(model: onnx.ModelProto, boundary: set[str], *, opens: bool) -> Stages:
    """Stages of ``model`` (nodes in topological order) around the ``boundary`` nodes.

    ``opens=True``: a boundary node starts a new stage (every tensor it reads is computed in an
    earlier stage: the repair can change the node before it runs). ``opens=False``: a boundary
    node ends its stage (every reader of its outputs runs in a later stage: the repair can measure
    and rewrite its outputs before they are read).
    """
    stages = Stages(model)
    level: dict[str, int] = {}
    for node in model.graph.node:
        reads = [t for t in node.input if t] + sorted(_outer_reads(node))
        stage = max((level.get(t, 0) for t in reads), default=0)
        is_boundary = node.name in boundary
        stage += int(is_boundary and opens)
        stages.stage_of.append(stage)
        stages.reads.append(reads)
        for t in reads:
            stages.last_read[t] = max(stages.last_read.get(t, 0), stage)
        for out in node.output:
            if out:
                level[out] = stage + int(is_boundary and not opens)
    stages.count = max(stages.stage_of, default=0) + 1
    return stages


def _sub_model(stages: Stages, stage: int, cache: dict, outputs: set, initializers: dict, offsets: dict):
    model = stages.model
    graph = onnx.GraphProto(name=f"stage{stage}")
    inits = {t.name: t for t in model.graph.initializer}
    produced, inputs, used = set(), [], []
    for node, s, reads in zip(model.graph.node, stages.stage_of, stages.reads):
        if s != stage:
            continue
        copy = graph.node.add()
        copy.CopyFrom(node)
        for t in reads:
            if t in inits and t not in used:
                used.append(t)
            elif t not in inits and t not in produced and t not in inputs:
                inputs.append(t)
        produced.update(o for o in node.output if o)
        if copy.output and copy.output[0] in offsets:
            out = copy.output[0]
            copy.output[0] = f"{out}__before_offset"
            graph.initializer.append(onnx.numpy_helper.from_array(offsets[out], f"{out}__offset"))
            graph.node.add().CopyFrom(onnx.helper.make_node("Add", [copy.output[0], f"{out}__offset"], [out]))
    for name in used:
        graph.initializer.append(onnx.numpy_helper.from_array(initializers[name], name) if name in initializers
                                 else inits[name])
    for name in inputs:
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.asarray(cache[name]).dtype)
        graph.input.append(onnx.helper.make_tensor_value_info(name, elem, None))
    wanted = sorted(t for t in produced if stages.last_read.get(t, -1) > stage or t in outputs)
    graph.output.extend(onnx.helper.make_empty_tensor_value_info(t) for t in wanted)
    sub = onnx.helper.make_model(graph, opset_imports=list(model.opset_import))
    sub.ir_version = max(model.ir_version, 4)  # initializers need not be graph inputs
    sub.functions.extend(model.functions)
    return sub, inputs


class StagedRun:
    """Every sample's cached tensors; :meth:`run` advances all samples by one stage."""

    def __init__(self, stages: Stages, feeds, label: str):
        self.stages, self.label = stages, label
        self.caches = [dict(feed) for feed in feeds]
        self.done = -1

    def run(self, stage: int, *, outputs=(), initializers=None, offsets=None) -> None:
        """Run ``stage`` on every sample. ``outputs``: tensors to keep even if no later stage reads them;
        ``initializers``: new values by name; ``offsets``: node output name -> constant added to it."""
        if not self.caches:
            return
        outputs = set(outputs)
        sub, inputs = _sub_model(self.stages, stage, self.caches[0], outputs, initializers or {}, offsets or {})
        if len(sub.graph.output):  # a last stage may only make graph outputs, which no repair reads
            session = make_session(sub, exact=True, label=f"{self.label} (stage {stage})")
            for i, cache in enumerate(self.caches):
                cache.update(run_session(session, {n: cache[n] for n in inputs}, label=self.label, sample=i))
        for cache in self.caches:
            for name in [t for t in cache if self.stages.last_read.get(t, -1) <= stage and t not in outputs]:
                del cache[name]
        self.done = stage

    def values(self, tensor: str) -> list[np.ndarray]:
        return [cache[tensor] for cache in self.caches]

    def rewrite(self, tensor: str, change) -> None:
        """Replace ``tensor`` in every sample's cache by ``change(value)``."""
        for cache in self.caches:
            cache[tensor] = change(cache[tensor])

    def forget(self, tensors) -> None:
        for cache in self.caches:
            for t in tensors:
                if self.stages.last_read.get(t, -1) <= self.done:
                    cache.pop(t, None)
