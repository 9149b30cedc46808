"""Pause Python's cyclic garbage collector while a large graph is analysed.

Shape inference and the analysis make hundreds of thousands of small objects (protobuf wrappers,
sympy expressions, spaces, links) without reference cycles worth collecting: the collector would
only walk them again and again as they pile up (a tenth to a third of the time on graphs of
thousands of nodes). Reference counting still frees everything; the collector runs again as
soon as the block ends.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    """Disable the cyclic collector inside the block (restored as it was, also on errors)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
