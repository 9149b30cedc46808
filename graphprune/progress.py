"""Progress bars for the stages a user waits for (benchmark runs, validation samples, loading).

Bars go to stderr, are drawn only when stderr is a terminal, and are cleared when they finish
(``leave=False``), so piped output and logs stay clean. Library code calls :func:`progress`
with ``enabled=`` taken from its own ``progress`` argument; the CLI decides nothing else.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar


T = TypeVar("T")


def bars_visible(stream=None) -> bool:
    """True when progress bars would be drawn on ``stream`` (default: stderr)."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str | None = None,
             enabled: bool = True, unit: str = "it") -> Iterator[T]:
    """Wrap ``iterable`` in a transient tqdm bar, or return it untouched when bars are off."""
    if not enabled or not bars_visible():
        return iter(iterable)
    from tqdm import tqdm  # only when a bar is drawn

    return iter(tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr,
                     dynamic_ncols=True))
