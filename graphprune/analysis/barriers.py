"""Why a space must be kept: the barriers of reached spaces.

A space is kept when its tensor is a graph input or output, when its size is not static, when a
node touching its tensor cannot explain it (no rule, a reason, or no mention), or when its size
is read as data by something that would not follow a change. A part of an axis (``Space.part``)
is explained by whatever explains its whole axis when that axis has a static size (its positions
are positions of the whole); a part of a symbolic axis must be linked itself.
"""
from __future__ import annotations

from ..graph.index import GraphIndex
from ..graph.nodes import inputs, outputs
from ..rules.base import Space
from ..rules.shapevalue import ShapeValues, copies_values
from .types import Barrier


def touching_nodes(index: GraphIndex, tensor: str) -> list[str]:
    names = [u.node for u in index.uses(tensor)]
    prod = index.producer.get(tensor)
    if prod is not None:
        names.append(prod)
    return list(dict.fromkeys(names))


def _tensor_barriers(index: GraphIndex, space: Space, size) -> list[Barrier]:
    out: list[Barrier] = []
    t = space.tensor
    if not isinstance(size, int):
        out.append(Barrier(space, f"axis {space.axis} of {t} has no static size", None))
    if t in index.graph_inputs:
        out.append(Barrier(space, f"{t} is a graph input", None))
    if t in index.graph_outputs:
        out.append(Barrier(space, f"{t} is a graph output", None))
    if t in index.initializer_inputs and index.strict_initializer_inputs:
        out.append(Barrier(space, f"initializer {t} is also a graph input (it can be overridden at run time; "
                                  "drop --strict-initializer-inputs to treat it as a weight)", None))
    if t not in index.producer and t not in index.initializers and t not in index.graph_inputs:
        out.append(Barrier(space, f"{t} has no producer", None))
    return out


def space_barriers(index: GraphIndex, infos: dict, space: Space, size, whole_static: bool,
                   touching: list[str] | None = None) -> list[Barrier]:
    """Barriers of one reached space (``whole_static``: for a part, whether its axis has a static size;
    ``touching``: :func:`touching_nodes` of its tensor when the caller has them)."""
    out = _tensor_barriers(index, space, size)
    t = space.tensor
    whole = space.whole
    in_subgraph = {u.node for u in index.uses(t) if u.index == -1}
    for name in touching_nodes(index, t) if touching is None else touching:
        info = infos[name]
        if info.result is None:
            out.append(Barrier(space, info.reason, name))
        elif space in info.result.reasons:
            out.append(Barrier(space, info.result.reasons[space], name))
        elif space.is_part and whole in info.result.reasons and space not in info.mentioned:
            out.append(Barrier(space, info.result.reasons[whole], name))
        elif name in in_subgraph:
            out.append(Barrier(space, f"{info.op} node {name} reads {t} inside a subgraph", name))
        elif space not in info.mentioned and not (space.is_part and whole_static and whole in info.mentioned):
            out.append(Barrier(space, f"{info.op} node {name} does not explain axis {space.axis} of {t}", name))
    return out


def _walks_through(index: GraphIndex, values: ShapeValues, consumer, use_index: int) -> bool:
    """Does a size flow on through ``consumer`` element by element (a copy, or a copy times a literal)?"""
    if use_index < 0:
        return False
    if copies_values(consumer, use_index):
        return True
    if consumer.op_type == "Mul" and consumer.domain in ("", "ai.onnx"):
        entries = values.value(outputs(consumer)[0])
        return bool(entries) and all(e.is_scaled or e.is_dim or e.value is not None and not e.deps for e in entries)
    return False


def size_use_barriers(index: GraphIndex, infos, values: ShapeValues, discovered) -> dict:
    """Barriers for channel spaces whose *size* is read as data (Shape/Size feeding arithmetic...).

    A size may flow through copies (Gather, Concat, Unsqueeze..., and a product with a literal)
    into a shape input whose rule links it to the channels it describes; any other use would
    silently change after pruning. A part's size changes its axis' size, so it counts as the axis.
    """
    by_tensor: dict[str, list[Space]] = {}
    for s in discovered:
        by_tensor.setdefault(s.tensor, []).append(s)
    out: dict[Space, list[Barrier]] = {}
    for name in index.node_order:
        node = index.nodes[name]
        if node.op_type not in ("Shape", "Size") or node.domain not in ("", "ai.onnx"):
            continue
        spaces = by_tensor.get(inputs(node)[0] if node.inputs else "")
        if not spaces:
            continue
        stack, seen = [outputs(node)[0]], set()
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in index.graph_outputs:
                for sp in spaces:
                    out.setdefault(sp, []).append(Barrier(sp, f"the size of {sp} is a graph output ({t})", name))
            for use in index.uses(t):
                consumer = index.nodes[use.node]
                if _walks_through(index, values, consumer, use.index):
                    stack.extend(o for o in outputs(consumer) if o)
                    continue
                _check_size_use(out, infos, values, t, consumer, spaces)
    return out


def _check_size_use(out: dict, infos, values: ShapeValues, tensor: str, consumer, spaces) -> None:
    entries = values.value(tensor)
    for sp in spaces:
        dep = (sp.tensor, sp.axis)
        if entries is None:
            bad = True
        else:
            result = infos[consumer.name].result
            follows = result is not None and sp.whole in result.size_uses
            bad = any(dep in e.deps and not (e.dim_source == dep and follows) for e in entries)
        if bad:
            out.setdefault(sp, []).append(Barrier(
                sp, f"{consumer.op_type} node {consumer.name} uses the size of {sp} as data", consumer.name))
