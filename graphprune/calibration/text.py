"""Token inputs from plain text, through a Hugging Face ``tokenizer.json`` (the ``tokenizers`` package).

    arrays = tokenize_file("sentences.txt", "tokenizer.json", max_length=128)
    np.savez("calib.npz", **arrays)       # or hand ``arrays`` to calibration directly
    feeds = text_feeds("sentences.txt", "tokenizer.json", model_inputs(model))  # streamed, batched

A text file holds one sentence (or passage) per line; blank lines are skipped. Each sentence is
one row of ``input_ids``, ``attention_mask`` and ``token_type_ids`` (int64 ``[n, length]``): the
tokenizer's own normalization, special tokens and truncation at ``max_length``; every row is
padded on the right to the longest row of the call (so ``length <= max_length``), with the pad id
of the tokenizer file's padding settings (0 when it has none) and mask 0. A rank-2 array is one
feed of batch ``n``; :func:`as_batches` regroups the rows into feeds of a fixed batch size.
The truncation and padding settings stored in the tokenizer file are ignored.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import DataError, UsageError
from ..vocabulary import DEFAULT_MAX_LENGTH

log = logging.getLogger(__name__)

TOKEN_ARRAYS = ("input_ids", "attention_mask", "token_type_ids")
INSTALL_HINT = "pip install 'graphprune[text]'  (or: pip install tokenizers)"
#: sentences per calibration feed when the model does not fix its batch size
TEXT_BATCH = 16


def require_tokenizers() -> None:
    """A usage error with the install hint when the ``tokenizers`` package is missing."""
    _tokenizer_class()


def _tokenizer_class():
    try:
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise UsageError(f"text calibration data needs the 'tokenizers' package: {INSTALL_HINT}") from exc
    return Tokenizer


def load_tokenizer(path: str | Path):
    """A ``tokenizers.Tokenizer`` from a ``tokenizer.json`` file."""
    tokenizer_class, path = _tokenizer_class(), Path(path)
    try:
        return tokenizer_class.from_str(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the tokenizer ({exc.strerror or exc})") from exc
    except Exception as exc:  # the Rust side raises a plain Exception for a malformed file
        raise DataError(f"{path}: not a tokenizer.json file ({exc})") from exc


def tokenizer_from_json(text: str):
    """A ``tokenizers.Tokenizer`` from the text of a ``tokenizer.json`` file."""
    try:
        return _tokenizer_class().from_str(text)
    except UsageError:
        raise
    except Exception as exc:
        raise DataError(f"not a tokenizer.json document ({exc})") from exc


def read_sentences(path: str | Path) -> list[str]:
    """The non-blank lines of a UTF-8 text file, stripped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the text file ({exc})") from exc
    sentences = [line.strip() for line in lines if line.strip()]
    if not sentences:
        raise DataError(f"{path}: the text file has no non-blank line")
    return sentences


def encode(tokenizer, sentences: Sequence[str], max_length: int = 128,
           length: int | None = None) -> dict[str, np.ndarray]:
    """``input_ids``/``attention_mask``/``token_type_ids`` of ``sentences`` (see the module docstring);
    with ``length``, every row is truncated and padded to exactly that many tokens instead.

    ``tokenizer`` itself is not changed (a copy gets the truncation and padding settings).
    """
    if max_length < 2:
        raise UsageError(f"max_length must be at least 2 (room for the special tokens), got {max_length}")
    if not sentences:
        raise DataError("no sentences to encode")
    padding = tokenizer.padding or {}
    local = type(tokenizer).from_str(tokenizer.to_str())
    local.enable_truncation(length or max_length)
    local.enable_padding(pad_id=padding.get("pad_id", 0), pad_type_id=padding.get("pad_type_id", 0),
                         pad_token=padding.get("pad_token", "[PAD]"), length=length)
    encodings = local.encode_batch(list(sentences))
    truncated = sum(1 for e in encodings if e.overflowing)
    if truncated:
        log.info("%d of %d sentences truncated to %d tokens", truncated, len(encodings), length or max_length)
    fields = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
    return {name: np.array([getattr(e, field) for e in encodings], dtype=np.int64)
            for name, field in fields.items()}


def tokenize_file(text_path: str | Path, tokenizer_path: str | Path, max_length: int = 128) -> dict[str, np.ndarray]:
    """:func:`encode` of the lines of ``text_path`` with the tokenizer in ``tokenizer_path``."""
    return encode(load_tokenizer(tokenizer_path), read_sentences(text_path), max_length)


def as_batches(arrays: dict[str, np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
    """``[n, length]`` arrays regrouped as ``[n // batch_size, batch_size, length]`` (a stack of feeds).

    A trailing partial batch is dropped (with a log line).
    """
    count = len(next(iter(arrays.values())))
    if not 1 <= batch_size <= count:
        raise UsageError(f"batch size must be between 1 and the {count} rows, got {batch_size}")
    whole = count // batch_size * batch_size
    if whole < count:
        log.info("dropping the last %d of %d rows (not a whole batch of %d)", count - whole, count, batch_size)
    return {name: array[:whole].reshape(whole // batch_size, batch_size, *array.shape[1:])
            for name, array in arrays.items()}


def _fixed_sizes(specs, path) -> tuple[int | None, int | None]:
    """The batch size and sequence length the model's token inputs fix (None where dynamic)."""
    tokens = [spec for spec in specs if spec.name in TOKEN_ARRAYS]
    if not tokens:
        raise DataError(f"{path}: text calibration data feeds inputs named {', '.join(TOKEN_ARRAYS)}; the model's "
                        f"inputs are {', '.join(spec.name for spec in specs)} (tokenize into an .npz instead)")
    batch = length = None
    for spec in tokens:
        if spec.dims is not None and len(spec.dims) == 2:
            batch = spec.dims[0] if isinstance(spec.dims[0], int) else batch
            length = spec.dims[1] if isinstance(spec.dims[1], int) else length
    return batch, length


def text_feeds(text_path: str | Path, tokenizer_path: str | Path, specs, *, limit: int | None = None,
               max_length: int = DEFAULT_MAX_LENGTH, batch_size: int | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Feeds of the model's token inputs from the first ``limit`` lines of a text file, tokenized lazily.

    ``specs`` are the model's inputs (:func:`graphprune.validation.feeds.model_inputs`). Each feed
    holds ``batch_size`` (default :data:`TEXT_BATCH`) sentences (the model's batch size when it fixes one; a trailing partial
    batch is then dropped), padded to the longest of them, or to the model's sequence length when it
    fixes one. Only arrays the model reads are fed.
    """
    tokenizer = load_tokenizer(tokenizer_path)
    sentences = read_sentences(text_path)[:limit]
    batch, length = _fixed_sizes(specs, text_path)
    size = batch or batch_size or TEXT_BATCH
    names = {spec.name for spec in specs}
    whole = len(sentences) if batch is None else len(sentences) // size * size
    if whole < len(sentences):
        log.info("%s: dropping the last %d sentences (the model's batch size is %d)", text_path,
                 len(sentences) - whole, size)
    if whole == 0:
        raise DataError(f"{text_path}: {len(sentences)} sentences, fewer than the model's batch size {size}")
    for start in range(0, whole, size):
        arrays = encode(tokenizer, sentences[start:start + size], max_length, length)
        yield {name: array for name, array in arrays.items() if name in names}
