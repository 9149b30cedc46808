"""Text calibration data: sentences through a tokenizer.json (graphprune.calibration.text).

A tiny word-level tokenizer is built here with the ``tokenizers`` package (no model file needed):
vocabulary ``[PAD] [UNK] [CLS] [SEP] the cat sat on mat dog``, lower-casing, ``[CLS] ... [SEP]``.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest

from graphprune.calibration import text
from graphprune.errors import DataError, UsageError

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "dog"]
ID = {token: index for index, token in enumerate(VOCAB)}


@pytest.fixture()
def tokenizer_path(tmp_path):
    tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is not installed (pip install tokenizers)")
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(ID, unk_token="[UNK]"))
    tokenizer.normalizer = tokenizers.normalizers.Lowercase()
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", ID["[CLS]"]), ("[SEP]", ID["[SEP]"])])
    tokenizer.enable_padding(length=32, pad_id=ID["[PAD]"])  # stored settings: ignored by encode
    path = tmp_path / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_text_file_becomes_padded_rows(tmp_path, tokenizer_path):
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("The cat sat\n\n   \nthe DOG sat on the mat  \nzebra\n", encoding="utf-8")
    arrays = text.tokenize_file(sentences, tokenizer_path, max_length=16)
    cls, sep = ID["[CLS]"], ID["[SEP]"]
    expected_ids = [[cls, ID["the"], ID["cat"], ID["sat"], sep, 0, 0, 0],
                    [cls, ID["the"], ID["dog"], ID["sat"], ID["on"], ID["the"], ID["mat"], sep],
                    [cls, ID["[UNK]"], sep, 0, 0, 0, 0, 0]]
    assert sorted(arrays) == sorted(text.TOKEN_ARRAYS)
    assert all(a.dtype == np.int64 and a.shape == (3, 8) for a in arrays.values())
    assert arrays["input_ids"].tolist() == expected_ids
    assert arrays["attention_mask"].tolist() == [[1] * 5 + [0] * 3, [1] * 8, [1] * 3 + [0] * 5]
    assert not arrays["token_type_ids"].any()


def test_truncation_keeps_the_special_tokens(tokenizer_path):
    tokenizer = text.load_tokenizer(tokenizer_path)
    arrays = text.encode(tokenizer, ["the cat sat on the mat", "cat"], max_length=4)
    assert arrays["input_ids"].tolist() == [[ID["[CLS]"], ID["the"], ID["cat"], ID["[SEP]"]],
                                            [ID["[CLS]"], ID["cat"], ID["[SEP]"], 0]]
    assert tokenizer.padding["length"] == 32 and tokenizer.truncation is None  # caller's tokenizer untouched


def test_as_batches_regroups_rows(tokenizer_path):
    arrays = text.encode(text.load_tokenizer(tokenizer_path), ["the cat", "the dog", "a mat", "on"], max_length=8)
    batched = text.as_batches(arrays, 3)
    assert batched["input_ids"].shape == (1, 3, 4)
    np.testing.assert_array_equal(batched["attention_mask"][0], arrays["attention_mask"][:3])
    with pytest.raises(UsageError, match="batch size"):
        text.as_batches(arrays, 5)


def test_errors_name_the_problem(tmp_path, tokenizer_path, monkeypatch):
    with pytest.raises(DataError, match="cannot read the tokenizer"):
        text.load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="not a tokenizer.json"):
        text.load_tokenizer(tmp_path / "bad.json")
    (tmp_path / "blank.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(DataError, match="no non-blank line"):
        text.read_sentences(tmp_path / "blank.txt")
    with pytest.raises(UsageError, match="max_length"):
        text.encode(text.load_tokenizer(tokenizer_path), ["the cat"], max_length=1)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import fails as if not installed
    with pytest.raises(UsageError, match="pip install"):
        text.load_tokenizer(tokenizer_path)
