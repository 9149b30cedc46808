"""argparse types of graphprune's options: each turns a bad value into a usage error (exit 2)
that says what was expected."""
from __future__ import annotations

import argparse


def _number(text: str, convert, ok, expected: str):
    try:
        value = convert(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from exc
    if not ok(value):
        raise argparse.ArgumentTypeError(f"must be {expected}, got {text}")
    return value


def fraction(text: str) -> float:
    """argparse type: a fraction removed, in [0, 1)."""
    return _number(text, float, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def keep_fraction(text: str) -> float:
    """argparse type: a fraction of the original kept, in (0, 1]."""
    return _number(text, float, lambda v: 0.0 < v <= 1.0, "a fraction of the original to keep, in (0, 1]")


def positive_int(text: str) -> int:
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    return _number(text, float, lambda v: v > 0 and v == v and v != float("inf"), "a positive number")


def floats(text: str) -> list[float]:
    """argparse type: ``0.485,0.456,0.406`` (argparse turns the error into a usage error)."""
    try:
        return [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def image_size(text: str) -> tuple[int, int]:
    """argparse type: ``224`` or ``224x160``."""
    try:
        dims = [int(v) for v in text.lower().replace(",", "x").split("x")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected H or HxW, got {text!r}") from exc
    if len(dims) not in (1, 2) or min(dims) <= 0:
        raise argparse.ArgumentTypeError(f"expected one or two positive integers (H or HxW), got {text!r}")
    return (dims[0], dims[-1])
