"""Command line interface: ``graphprune <command> ...``.

This package is the only place that prints. Each command lives in its own module exposing
``register(subparsers)``; the module's parser sets ``func`` to a callable ``(args) -> int``.
Errors derived from :class:`graphprune.errors.GraphPruneError` become one line on stderr and
their documented exit code; anything else is reported as an internal error (exit 70), with the
traceback only under ``--debug``.
"""
from __future__ import annotations

import argparse
import atexit
import gc
import importlib
import logging
import os
import sys

from ..errors import EXIT_CODES, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, GraphPruneError

#: command modules, in the order they appear in ``--help``
COMMANDS = ("inspect", "prune", "plan", "apply", "fold", "validate", "profile", "sensitivity")

EPILOG = """examples:
  graphprune inspect model.onnx
  graphprune prune model.onnx -o slim.onnx --ratio 0.3
  graphprune fold model.onnx -o folded.onnx
  graphprune validate model.onnx slim.onnx --samples 8
  graphprune profile model.onnx --compare slim.onnx --bench

exit codes:
""" + "\n".join(f"  {code:<3} {text}" for code, text in EXIT_CODES.items())


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so usage errors share the one-line format."""

    def error(self, message):  # noqa: D401 - argparse API
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        hint = f" (see {self.prog} --help)"
        raise _UsageExit(f"{command}: {message}{hint}" if command else f"{message}{hint}")


class _UsageExit(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="graphprune", description="Structured pruning, BatchNorm folding and validation for ONNX models.",
                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    from ..version import __version__
    parser.add_argument("--version", action="version", version=f"graphprune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f".{name}_cmd", __name__)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.endswith(f"{name}_cmd"):
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
    except _UsageExit as exc:
        print(f"graphprune: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except GraphPruneError as exc:
        if debug:
            raise
        print(f"graphprune: error: {one_line(exc.message)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("graphprune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader of stdout went away (``graphprune inspect m.onnx | head``): stop quietly
        _silence_stdout()
        return 0
    except MemoryError:
        if debug:
            raise
        print("graphprune: error: out of memory: this model needs more memory than is available; nothing was "
              "written", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:  # noqa: BLE001 - last line of defence: never a bare traceback
        if debug:
            raise
        print(f"graphprune: internal error: {type(exc).__name__}: {one_line(str(exc))} "
              "(rerun with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so flushing it at exit does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (captured output)
        pass


def one_line(text: str) -> str:
    """Every message is printed on one line: line breaks inside it become spaces."""
    return " ".join(text.split()) if "\n" in text or "\r" in text else text


def run() -> None:
    code = main()
    if code == EXIT_INTERRUPTED and _workers_busy():
        # onnxruntime work on a worker thread (a session being made, seeded runs, a size probe)
        # cannot be stopped, and Python would wait for it: leave now (every output was already
        # cleaned up by the code the interruption unwound through)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    # the interpreter's last collection would walk every object left (the graph, the analysis,
    # sessions' wrappers) only to find what reference counting frees anyway: freezing them skips it
    # (ResNet-50 prune: 0.1 s of the exit's 0.2 s)
    gc.freeze()
    if _only_this_thread():
        # nothing runs beside: the exit handlers run (logging, temporary files, a cluster's shutdown),
        # then the process ends without tearing every module and object down one by one (the rest
        # of the exit's 0.2 s); every output was written and closed by the command itself
        atexit._run_exitfuncs()
        _flush_standard_streams()
        os._exit(code)
    sys.exit(code)


def _only_this_thread() -> bool:
    """True when no other thread Python would wait for at exit is alive."""
    import threading

    return all(t is threading.current_thread() or t.daemon or not t.is_alive() for t in threading.enumerate())


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a reader gone, a stream closed or replaced
            pass


def _workers_busy() -> bool:
    """True while one of graphprune's worker threads still runs."""
    import threading

    return any(t.name.startswith("graphprune-") and t.is_alive() for t in threading.enumerate())
