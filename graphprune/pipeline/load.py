"""Stage ``load``: a path or a ModelProto becomes a :class:`Source`."""
from __future__ import annotations

import os
from pathlib import Path

import onnx

from .values import Source


def load(model: onnx.ModelProto | str | os.PathLike | Source, label: str | None = None) -> Source:
    """The source of ``model``: a file is read and checked (see :mod:`graphprune.io`); a
    ModelProto is used as it is (it is never modified)."""
    if isinstance(model, Source):
        return model
    if isinstance(model, onnx.ModelProto):
        return Source(model, label or model.graph.name or "model")
    from ..io import read_model

    path = Path(model)
    proto, file = read_model(path)
    return Source(proto, label or path.name, path, file)
