"""Ctrl-C that reaches the code under test.

A test that interrupts its own process (``_thread.interrupt_main``) or a child (``SIGINT``) needs
SIGINT handled by Python and not blocked. Something else in a long test process can leave it
otherwise (a full-suite run in a fresh environment once had all three interrupt tests of one
worker see no KeyboardInterrupt, and a child started from that worker ignore SIGINT), so these
set it explicitly: the low-level ``_signal.signal``, in case ``signal.signal`` is patched."""
from __future__ import annotations

import _signal
import contextlib
import signal


@contextlib.contextmanager
def ctrl_c_reaches_this_process():
    """For the duration: SIGINT unblocked in this thread and handled by ``default_int_handler``."""
    previous = _signal.getsignal(signal.SIGINT)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        _signal.signal(signal.SIGINT, previous if previous is not None else _signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def ctrl_c_reaches_the_child() -> None:
    """``preexec_fn`` of a child process: SIGINT unblocked and at its default (Python then raises
    KeyboardInterrupt on it), whatever the parent had."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _signal.signal(signal.SIGINT, _signal.SIG_DFL)
