"""The registry of transformer builders: ``TRANSFORMERS[name](style=..., **kw)``.

An architecture function ``arch(b, size, **kw)`` builds into a :class:`TransformerBuilder`;
:func:`register` wraps it into a builder with the common keywords and records the export
styles it exists in (``STYLES[name]``, the first is the default).
"""
from __future__ import annotations

from typing import Callable

import onnx

from models.transformers.common import Dim, TransformerBuilder

TRANSFORMERS: dict[str, Callable[..., onnx.ModelProto]] = {}
STYLES: dict[str, tuple[str, ...]] = {}
SIZES: dict[str, tuple[str, ...]] = {}


def register(name: str, styles: tuple[str, ...], sizes: tuple[str, ...] = ("small",),
             default_opset: int | None = None, **fixed):
    """Register ``arch(b, size, **kw)`` as ``TRANSFORMERS[name]``.

    ``default_opset``: the opset when the caller gives none (else the style's default).
    """
    def wrap(arch):
        def builder(*, style: str | None = None, opset: int | None = None, seed: int = 0,
                    batch: Dim = "batch", sequence: Dim = "sequence", size: str = sizes[0],
                    **kw) -> onnx.ModelProto:
            style = styles[0] if style is None else style
            if style not in styles:
                raise ValueError(f"{name} exists in the styles {styles}, not {style!r}")
            if size not in sizes:
                raise ValueError(f"{name}: size must be one of {sizes}, got {size!r}")
            opset = default_opset if opset is None else opset
            b = TransformerBuilder(name, style=style, opset=opset, seed=seed, batch=batch, sequence=sequence)
            arch(b, size, **{**fixed, **kw})
            return b.finish(doc=f"graphprune reference transformer {name} ({style}, {size}), seed {seed}")
        builder.__name__, builder.__qualname__, builder.__doc__ = name, name, arch.__doc__
        TRANSFORMERS[name], STYLES[name], SIZES[name] = builder, styles, sizes
        return arch
    return wrap


def build_transformer(name: str, **kw) -> onnx.ModelProto:
    """Build transformer ``name`` (see ``TRANSFORMERS``; keywords as ``register`` documents)."""
    if name not in TRANSFORMERS:
        raise KeyError(f"unknown transformer {name!r}; known: {', '.join(sorted(TRANSFORMERS))}")
    return TRANSFORMERS[name](**kw)
