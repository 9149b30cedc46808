"""graph/gc_pause.py: the cyclic collector is off inside the block and as it was after it."""
from __future__ import annotations

import gc

import pytest

from graphprune.graph.gc_pause import gc_paused


@pytest.fixture
def collector_state():
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
