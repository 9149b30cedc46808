"""Pause Python's cyclic garbage collector while a large graph is analysed.

Shape inference and the analysis make hundreds of thousands of small objects (protobuf wrappers,
sympy expressions, spaces, links) without reference cycles worth collecting: the collector would
only walk them again and again as they pile up (a tenth to a third of the time on graphs of
thousands of nodes). Reference counting still frees everything; the collector runs again as
soon as the block ends.
"""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0          # paused blocks open now, on every thread
_resume = False     # whether the collector was enabled when the first of them began


@contextmanager
def gc_paused():
    """Disable the cyclic collector inside the block (restored as it was, also on errors).

    What the block made is then moved to the oldest generation unscanned: otherwise the next
    collection would walk every object of the block at once (half a second after building a
    20k-node graph), and the one after that again. Blocks may nest and may run on several threads
    at once (a session made on a worker while the main thread analyses): the collector resumes
    when the last of them ends."""
    global _depth, _resume
    with _lock:
        if _depth == 0:
            _resume = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _resume:
                _to_oldest_generation()
                gc.enable()


def _to_oldest_generation() -> None:
    """Every tracked object into the oldest generation, without a collection: ``gc.freeze`` moves
    them all to the permanent generation and ``gc.unfreeze`` back into the oldest one (neither
    walks them). Skipped when the program froze objects itself (unfreezing would release them)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()
