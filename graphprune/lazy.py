"""Package names imported on first use (keeps ``import graphprune.<package>`` cheap)."""
from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types


def lazy_exports(package: str, exports: dict[str, str]):
    """A module ``__getattr__`` that imports ``exports[name]`` (a module relative to ``package``)."""

    def __getattr__(name: str):
        if name in exports:
            return getattr(importlib.import_module(exports[name], package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def import_beside(*names: str) -> threading.Thread:
    """Import ``names`` on a daemon thread while the caller works. The import needs the GIL, so it
    only overlaps what releases it: reading a model's file does, protobuf's parse does not, and
    numpy's arithmetic in the fold does (ResNet-50 ``prune --no-validate``: 0.93x the whole command
    against importing networkx where the analysis needs it). A
    module the caller imports meanwhile waits for the thread's import of it; a failure is left for
    the caller's own import to raise."""
    def run():
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the import where the module is used reports it
                return

    thread = threading.Thread(target=run, name="graphprune-imports", daemon=True)
    thread.start()
    return thread


class _Deferred(types.ModuleType):
    """Stands in ``sys.modules`` for a module until one of its attributes is read; then it imports
    the real module, puts it back in ``sys.modules`` and forwards every attribute to it."""

    def __init__(self, name: str):
        super().__init__(name)
        object.__setattr__(self, "_deferred_real", None)
        self.__spec__ = importlib.machinery.ModuleSpec(name, None)  # ``import name`` reads it, quietly

    def _deferred_load(self) -> types.ModuleType:
        with _LOCK:
            real = object.__getattribute__(self, "_deferred_real")
            if real is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                real = importlib.import_module(self.__name__)
                object.__setattr__(self, "_deferred_real", real)
        return real

    def __getattr__(self, name: str):
        return getattr(self._deferred_load(), name)

    def __setattr__(self, name: str, value) -> None:  # e.g. the import system binding a submodule
        if name == "__spec__" and object.__getattribute__(self, "_deferred_real") is None:
            object.__setattr__(self, name, value)
        else:
            setattr(self._deferred_load(), name, value)


_LOCK = threading.RLock()
#: onnx-ir imports sympy (0.3 s, more than half of a command's start) but needs it only for
#: arithmetic on symbolic dimensions, which graphprune never does; its ``_symbolic_shapes`` module
#: is the one that touches sympy while being imported.
DEFERRED_FOR_ONNX_IR = ("sympy", "onnx_ir._symbolic_shapes")


def defer_imports(names=DEFERRED_FOR_ONNX_IR) -> list[str]:
    """Put a :class:`_Deferred` stand-in in ``sys.modules`` for each of ``names`` not imported yet
    (none when onnx-ir is already imported: its modules hold the real ones). Returns the names
    deferred. Any use of a deferred module imports it then, so behaviour is unchanged."""
    if "onnx_ir" in sys.modules:
        return []
    deferred = [name for name in names if name not in sys.modules]
    for name in deferred:
        sys.modules[name] = _Deferred(name)
    return deferred
