"""graphprune: a structured-pruning compiler for ONNX models.

    import graphprune
    result = graphprune.prune("model.onnx", ratio=0.3)

The functions mirror the CLI commands (see :mod:`graphprune.api`); they are imported lazily so
that ``import graphprune`` stays cheap.
"""
from .lazy import defer_imports
from .version import __version__  # noqa: F401

defer_imports()  # sympy, which onnx-ir imports, only if something computes with symbolic dimensions

_API = ("inspect", "prune", "plan", "apply", "fold", "validate", "profile", "sensitivity", "export_masks")
__all__ = [*_API, "__version__"]


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'graphprune' has no attribute {name!r}")
