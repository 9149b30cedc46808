"""Copies of real models with their image height and width made dynamic, as a dynamic export writes them.

The input's spatial dims get the names ``H`` and ``W``; the declared output shapes and
value_info are dropped and the output shapes re-inferred by onnx from the graph alone (a
dimension that depends on H or W becomes unknown; an output onnx cannot infer gets a named
dim per axis, as PyTorch's exporter writes them), so the copy carries no trace of the size it
was exported at other than what its nodes and constants say. This module holds no tests.
"""
from __future__ import annotations

import onnx

#: channel counts that mark the channel axis of an image input
IMAGE_CHANNELS = (1, 3)


def spatial_axes(dims: list[int]) -> tuple[int, int]:
    """(height axis, width axis) of a 4-D image input: NCHW unless the channels are last."""
    if dims[1] in IMAGE_CHANNELS:
        return 2, 3
    if dims[3] in IMAGE_CHANNELS:
        return 1, 2
    raise ValueError(f"not an image input: dims {dims}")


def with_dynamic_height_width(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose one image input has dims named H and W (see module docstring)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    stored = {t.name for t in copy.graph.initializer}
    (image,) = [vi for vi in copy.graph.input if vi.name not in stored]
    dims = image.type.tensor_type.shape.dim
    for axis, name in zip(spatial_axes([d.dim_value for d in dims]), ("H", "W")):
        dims[axis].Clear()
        dims[axis].dim_param = name
    del copy.graph.value_info[:]
    ranks = [len(o.type.tensor_type.shape.dim) for o in copy.graph.output]
    for output in copy.graph.output:
        output.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(copy)
    for output, found, rank in zip(copy.graph.output, inferred.graph.output, ranks):
        output.type.CopyFrom(found.type)
        if not output.type.tensor_type.HasField("shape"):   # the onnx checker requires a shape on outputs
            for axis in range(rank):
                output.type.tensor_type.shape.dim.add().dim_param = f"{output.name}_dim_{axis}"
    return copy


def declared_hw(model: onnx.ModelProto) -> tuple[int, int]:
    """The (height, width) the original model declares for its image input."""
    stored = {t.name for t in model.graph.initializer}
    (image,) = [vi for vi in model.graph.input if vi.name not in stored]
    dims = [d.dim_value for d in image.type.tensor_type.shape.dim]
    h, w = spatial_axes(dims)
    return dims[h], dims[w]
