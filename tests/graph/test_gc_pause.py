"""graph/gc_pause.py: the cyclic collector is off inside the block and as it was after it."""
from __future__ import annotations

import gc

import pytest

from graphprune.graph.gc_pause import gc_paused


@pytest.fixture
def collector_state():
    """The collector as it was, and no graphprune worker of an earlier test inside a paused block."""
    import threading

    from graphprune.graph import gc_pause

    for thread in threading.enumerate():
        if thread.name.startswith("graphprune-"):
            thread.join(120)
    assert gc_pause._depth == 0
    before = gc.isenabled()
    yield
    gc.enable() if before else gc.disable()


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_inside_and_restored_after(collector_state, enabled):
    gc.enable() if enabled else gc.disable()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():  # nested: the inner block leaves it off for the outer one
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled() is enabled


def test_the_collector_is_restored_when_the_block_raises(collector_state):
    gc.enable()
    with pytest.raises(ValueError, match="inside"):
        with gc_paused():
            raise ValueError("inside")
    assert gc.isenabled()


def _generation_of(obj) -> int | None:
    return next((g for g in range(3) if any(o is obj for o in gc.get_objects(generation=g))), None)


def test_what_the_block_made_goes_to_the_oldest_generation_unscanned(collector_state):
    gc.enable()
    gc.collect()
    collections = []
    gc.callbacks.append(lambda phase, info: collections.append(phase))
    try:
        with gc_paused():
            made = [[i] for i in range(2000)]  # containers the collector tracks
        assert _generation_of(made[0]) == 2 and _generation_of(made[-1]) == 2
        assert collections == []  # moved without a collection
        assert gc.get_count()[0] < 700  # the young generation is not left holding the block's objects
    finally:
        gc.callbacks.pop()


def test_objects_the_program_froze_stay_frozen(collector_state):
    gc.enable()
    frozen = [[1]]
    gc.freeze()
    try:
        with gc_paused():
            made = [[i] for i in range(100)]
        # the program's frozen objects stay in the permanent generation and the block's were not
        # frozen with them (the exact freeze count is no measure: other threads may free frozen objects)
        assert gc.get_freeze_count() > 0 and _generation_of(frozen[0]) is None
        assert _generation_of(made[0]) in (0, 1, 2)
    finally:
        gc.unfreeze()


def test_blocks_on_two_threads_keep_it_off_until_the_last_one_ends(collector_state):
    """A worker's block begins, then the main thread's; the worker's ends first: the collector stays
    off for the rest of the main thread's block and comes back when that one ends."""
    import threading

    gc.enable()
    worker_in, worker_out, states = threading.Event(), threading.Event(), []

    def worker():
        with gc_paused():
            worker_in.set()
            worker_out.wait(5)
        states.append(gc.isenabled())

    thread = threading.Thread(target=worker)
    thread.start()
    assert worker_in.wait(5)
    with gc_paused():
        worker_out.set()
        thread.join(5)
        states.append(gc.isenabled())
    states.append(gc.isenabled())
    assert states == [False, False, True]
