"""Edits of the editable graph that every pass shares: attributes, initializers, inputs, names.

The graph's own links (a value's producer and uses) stay consistent through every edit here,
because each edit goes through onnx-ir (``replace_input_with``, ``register_initializer``...);
nothing keeps a consumer list of its own. Conventions that keep outputs stable:

* an attribute that is set again moves to the end of the node's attributes;
* a rewritten initializer keeps its name, place, doc string and metadata;
* a new initializer goes last and, in models of IR version < 4 (where every initializer must be
  a graph input), is declared as a graph input too.
"""
from __future__ import annotations

import numpy as np
import onnx_ir as ir


class Names:
    """Fresh tensor names for one graph: ``base``, else ``base_1``, ``base_2``..."""

    def __init__(self, graph: ir.Graph):
        self.taken: set[str] = {v.name for v in graph.inputs} | {v.name for v in graph.outputs}
        self.taken |= set(graph.initializers)
        for node in graph:
            self.taken.update(v.name for v in node.outputs if v.name)
            self.taken.update(v.name for v in node.inputs if v is not None and v.name)

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name


def set_attribute(node: ir.Node, name: str, value) -> None:
    """Set attribute ``name`` (moved to the end when it existed)."""
    node.attributes.pop(name, None)
    node.attributes[name] = ir.convenience.convert_attribute(name, value)


def delete_attribute(node: ir.Node, name: str) -> bool:
    return node.attributes.pop(name, None) is not None


def tensor(array: np.ndarray, name: str, like=None) -> ir.Tensor:
    """An IR tensor of ``array`` named ``name``, with the doc string and metadata of ``like``."""
    array = np.asarray(array, order="C")
    doc = like.doc_string if like is not None else None
    meta = dict(like.metadata_props) if like is not None and like.metadata_props else None
    return ir.Tensor(array, name=name, doc_string=doc or None, metadata_props=meta)


def write_initializer(value: ir.Value, array: np.ndarray) -> None:
    """Give initializer ``value`` new contents in place (name, position and doc string kept)."""
    value.const_value = tensor(array, value.name, like=value.const_value)


def add_initializer(model: ir.Model, name: str, array: np.ndarray) -> ir.Value:
    """A new initializer (last); declared as a graph input too in models of IR version < 4."""
    array = np.asarray(array)
    value = ir.Value(name=name, const_value=tensor(array, name), shape=ir.Shape(array.shape),
                     type=ir.TensorType(ir.DataType.from_numpy(array.dtype)))
    model.graph.register_initializer(value)
    if model.ir_version < 4:
        model.graph.inputs.append(value)
    return value


def remove_initializers(model: ir.Model, names: set[str]) -> int:
    """Delete initializers by name (and their graph-input declarations); returns how many."""
    graph = model.graph
    doomed = [n for n in graph.initializers if n in names]
    if not doomed:
        return 0
    declared = [v for v in graph.inputs if v.name in names]
    for value in declared:
        graph.inputs.remove(value)
    for name in doomed:
        graph.initializers.pop(name)
    return len(doomed)


def set_input(node: ir.Node, index: int, value: ir.Value | None) -> None:
    """``node.inputs[index] = value`` (inputs are extended with empty ones when needed)."""
    if index >= len(node.inputs):
        node.resize_inputs(index + 1)
    node.replace_input_with(index, value)


def take_declaration(new: ir.Value, output: ir.Value) -> None:
    """``new`` takes graph output ``output``'s declaration as the model wrote it (type, shape, doc
    string, metadata), so that replacing the output does not change the graph's interface."""
    new.type, new.shape, new.doc_string = output.type, output.shape, output.doc_string
    new.metadata_props.clear()
    new.metadata_props.update(output.metadata_props)


def replace_value(old: ir.Value, new: ir.Value) -> None:
    """``new`` takes the place of ``old``: every reader and graph output of ``old`` reads ``new``,
    which takes ``old``'s name (and, for a graph output, its declaration)."""
    name = old.name
    if old.is_graph_output():
        take_declaration(new, old)
    old.replace_all_uses_with(new, replace_graph_outputs=True)
    old.name = None
    new.name = name


def remove_nodes(graph: ir.Graph, nodes) -> None:
    """Remove nodes whose outputs nobody outside ``nodes`` reads; they stop reading their inputs."""
    graph.remove(list(nodes), safe=True)


def add_after(model: ir.Model, node: ir.Node, constant: np.ndarray, names: Names,
              bases: tuple[str, str, str]) -> ir.Node:
    """``y = node(...)`` becomes ``y' = node(...)``, ``y = Add(y', constant)``: readers and graph
    outputs keep reading ``y``. ``bases``: fresh-name bases of ``y'``, the constant and the Add."""
    y = node.outputs[0]
    out = y.name
    pre = names.fresh(bases[0])
    const = add_initializer(model, names.fresh(bases[1]), constant)
    added = ir.Value(name=None)
    replace_value(y, added)
    add = ir.Node("", "Add", [y, const], outputs=[added], name=names.fresh(bases[2]))
    y.name = pre
    added.name = out
    model.graph.insert_after(node, add)
    return add
