"""Real English sentences that ship with Python, split into calibration and evaluation sets.

The text is the reference documentation in ``pydoc_data.topics.topics`` (what ``help("if")``
prints). Topics are read in sorted key order, paragraphs (runs of non-blank lines, joined) that
hold an interactive example (``>>>``/``...``) are dropped, and each paragraph is split after
``.``/``!``/``?`` followed by white space and an upper-case letter or a quote. A sentence is kept
when it starts with an upper-case letter, ends with ``.``, has ``MIN_WORDS``..``MAX_WORDS`` words,
is at least ``MIN_PROSE_FRACTION`` letters and spaces (no code), and was not seen before. The
list therefore depends only on the Python version (3.11.7 gives 1645 sentences).

:func:`calibration_and_evaluation` draws two disjoint sets with one seeded permutation;
:func:`encode_sentences` tokenizes them with the tokenizer that ships with all-MiniLM-L6-v2
(``graphprune.calibration.text.encode``: rows padded to the longest of the call).
"""
from __future__ import annotations

import re

import numpy as np

from graphprune.calibration.text import encode, tokenizer_from_json

from .minilm import INPUTS, ModelFiles, find_model_files

MIN_WORDS, MAX_WORDS = 8, 40
MIN_PROSE_FRACTION = 0.85
_SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=[A-Z"])')
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _is_prose(sentence: str) -> bool:
    words = sentence.split()
    prose = sum(c.isalpha() or c == " " for c in sentence)
    return (MIN_WORDS <= len(words) <= MAX_WORDS and sentence[0].isupper() and sentence.endswith(".")
            and prose >= MIN_PROSE_FRACTION * len(sentence))


def split_sentences(text: str) -> list[str]:
    """The prose sentences of ``text``, in order (duplicates included)."""
    sentences = []
    for paragraph in _PARAGRAPH_BREAK.split(text):
        lines = [line.strip() for line in paragraph.splitlines()]
        if any(line.startswith((">>>", "...")) for line in lines):
            continue
        sentences.extend(s.strip() for s in _SENTENCE_END.split(" ".join(lines)))
    return [s for s in sentences if s and _is_prose(s)]


def pydoc_sentences() -> list[str]:
    """Every distinct prose sentence of ``pydoc_data.topics``, in first-seen order."""
    from pydoc_data.topics import topics

    unique: dict[str, None] = {}
    for key in sorted(topics):
        unique.update(dict.fromkeys(split_sentences(topics[key])))
    return list(unique)


def calibration_and_evaluation(n_calibration: int, n_evaluation: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Two disjoint sets of distinct sentences, drawn by one permutation seeded with ``seed``."""
    sentences = pydoc_sentences()
    if n_calibration < 1 or n_evaluation < 1 or n_calibration + n_evaluation > len(sentences):
        raise ValueError(f"cannot draw {n_calibration} + {n_evaluation} sentences from the "
                         f"{len(sentences)} available (each set needs at least one)")
    order = np.random.default_rng(seed).permutation(len(sentences))
    chosen = [sentences[i] for i in order[:n_calibration + n_evaluation]]
    return chosen[:n_calibration], chosen[n_calibration:]


def encode_sentences(sentences: list[str], max_length: int = 64,
                     files: ModelFiles | None = None) -> dict[str, np.ndarray]:
    """The model inputs (``input_ids``, ``attention_mask``: int64 ``[n, length]``) of ``sentences``."""
    tokenizer = tokenizer_from_json((files or find_model_files()).tokenizer_json())
    arrays = encode(tokenizer, sentences, max_length)
    return {name: arrays[name] for name in INPUTS}
