"""Progress bars of long stages: drawn only on a terminal, wiped when done, never when piped."""
from __future__ import annotations

import io
import sys

from graphprune import progress as progress_mod
from tests.helpers.models import small_cnn


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bars_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_mod.bars_visible()
    items = list(progress_mod.progress(range(3), total=3, desc="x"))
    assert items == [0, 1, 2] and sys.stderr.getvalue() == ""
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert progress_mod.bars_visible()
    assert list(progress_mod.progress(range(3), total=3, desc="working")) == [0, 1, 2]
    assert "working" in tty.getvalue()
    last = tty.getvalue().rsplit("\r", 2)[-2]
    assert last.strip() == ""                                           # the finished bar is wiped (leave=False)
    drawn = len(tty.getvalue())
    assert list(progress_mod.progress(range(3), enabled=False)) == [0, 1, 2]
    assert len(tty.getvalue()) == drawn                                 # enabled=False draws nothing


def test_validation_draws_no_bar_when_piped(monkeypatch):
    from graphprune.validation import validate

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert validate(small_cnn(), small_cnn(), samples=2).passed
    assert sys.stderr.getvalue() == ""


def test_closed_stream_has_no_bars():
    stream = io.StringIO()
    stream.close()
    assert not progress_mod.bars_visible(stream)
