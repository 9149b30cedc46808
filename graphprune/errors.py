"""Error types and the exit codes the command line maps them to.

Every error graphprune raises on purpose derives from :class:`GraphPruneError`; the CLI prints
its message on one line and exits with its ``exit_code``. Anything else is a bug (exit 70).
"""
from __future__ import annotations

EXIT_OK = 0
EXIT_VALIDATION_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_MODEL = 3
EXIT_OUTPUT = 4
EXIT_WORKERS_LOST = 5
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_VALIDATION_FAILED: "check failed: outputs beyond tolerance, a pruned model unlike its oracle, or "
                            "--max-drift missed (nothing written)",
    EXIT_USAGE: "usage error: an option or argument makes no sense",
    EXIT_BAD_MODEL: "the input model (or data/plan file) cannot be read, is invalid or is unsafe",
    EXIT_OUTPUT: "the output cannot be written",
    EXIT_WORKERS_LOST: "the workers were lost: the Ray cluster went away or a worker kept dying (nothing written)",
    EXIT_INTERNAL: "internal error (a bug; rerun with --debug and report the traceback)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): nothing written",
}


class GraphPruneError(Exception):
    """Root of every error graphprune raises deliberately."""

    exit_code = EXIT_INTERNAL

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(GraphPruneError):
    """An option or argument is out of range, unknown or inconsistent."""

    exit_code = EXIT_USAGE


class ModelLoadError(GraphPruneError):
    """The model file is missing, unreadable, not ONNX, or refers to missing external data."""

    exit_code = EXIT_BAD_MODEL


class InvalidModelError(GraphPruneError):
    """The file parses but the graph is not a valid ONNX graph."""

    exit_code = EXIT_BAD_MODEL


class UnsafeModelError(GraphPruneError):
    """The model asks to read outside its own directory or to allocate unbounded memory."""

    exit_code = EXIT_BAD_MODEL


class DataError(GraphPruneError):
    """Calibration/validation data or a plan file cannot be used with this model."""

    exit_code = EXIT_BAD_MODEL


class OutputError(GraphPruneError):
    """The output file cannot be written (missing directory, would overwrite the input...)."""

    exit_code = EXIT_OUTPUT


class ValidationFailed(GraphPruneError):
    """The candidate model's outputs do not match the reference within tolerance."""

    exit_code = EXIT_VALIDATION_FAILED


class DriftBudgetExceeded(ValidationFailed):
    """The pruned model misses ``--max-drift`` on held-out data; nothing is written.

    ``result`` holds what was measured (the prune result, with its gate), for the summary and report.
    """

    def __init__(self, message: str, result=None):
        super().__init__(message)
        self.result = result


class PruningError(GraphPruneError):
    """A plan cannot be applied (internal consistency check failed); nothing is written."""

    exit_code = EXIT_INTERNAL


class WorkerLost(GraphPruneError):
    """A worker process died (an out-of-memory kill, a crash) more often than it is restarted, or
    the Ray cluster went away; nothing is written."""

    exit_code = EXIT_WORKERS_LOST

