"""Text calibration end to end: ``--calib sentences.txt --tokenizer tokenizer.json`` on a tiny BERT.

The tokenizer is built here (word level, ``[CLS] ... [SEP]``, pad id 0) and the BERT is the
small reference export of ``models.transformers`` (vocabulary 100). Text feeds are batches of
``TEXT_BATCH`` sentences, each padded to its own longest row; an ``.npz`` of the same sentences
is one feed padded to the longest of all. With padded tokens left out of the statistics, both
must give the same plan (same removed slots, same compensation means).
"""
from __future__ import annotations

import sys

import numpy as np
import onnx
import pytest

from graphprune import api
from graphprune.calibration import text
from graphprune.cli import main
from graphprune.errors import UsageError
from graphprune.pipeline.feeds import with_data_shapes
from graphprune.pipeline.options import Options
from graphprune.validation.feeds import InputSpec
from models.transformers import build_transformer
from tests.helpers.onnxrt import run

tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is not installed (pip install tokenizers)")

WORDS = "the cat sat on a mat dog ran far away big small red blue green old new tree house".split()
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
SENTENCES = 40
#: two float32 calibrations of the same tokens in different batches (summation orders differ)
MEAN_RTOL, MEAN_ATOL = 1e-4, 1e-6


@pytest.fixture()
def files(tmp_path):
    vocab = {token: index for index, token in enumerate(SPECIAL + WORDS)}
    tokenizer = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice(WORDS, rng.integers(1, 13))) for _ in range(SENTENCES)]
    (tmp_path / "sentences.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = build_transformer("bert")
    onnx.save(model, tmp_path / "bert.onnx")
    return tmp_path


def test_text_and_npz_of_the_same_sentences_give_the_same_plan(files):
    arrays = text.tokenize_file(files / "sentences.txt", files / "tokenizer.json", max_length=16)
    np.savez(files / "calib.npz", **arrays)
    common = dict(ratio=0.5, importance="fluctuation", refit=False, calib_samples=None, eval_split=0)
    from_text = api.plan(str(files / "bert.onnx"), calib=str(files / "sentences.txt"),
                         tokenizer=str(files / "tokenizer.json"), max_length=16, **common)
    from_npz = api.plan(str(files / "bert.onnx"), calib=str(files / "calib.npz"), **common)
    assert from_text.calibration.samples == SENTENCES  # one sentence per sample: held out one by one
    assert from_npz.calibration.samples == 1
    real_tokens = int(arrays["attention_mask"].sum())
    for calibration in (from_text.calibration, from_npz.calibration):
        assert (calibration.sequences, calibration.tokens) == (SENTENCES, real_tokens)
    assert f"({SENTENCES} sequences, {real_tokens} real tokens)" in "\n".join(from_text.summary_lines())
    removed_text = {gid: list(map(int, slots)) for gid, slots in from_text.removed.items()}
    assert removed_text == {gid: list(map(int, slots)) for gid, slots in from_npz.removed.items()}
    assert sum(len(s) for s in removed_text.values()) == 84  # half of each of the 8 prunable groups (2 of heads)
    spaces_text, spaces_npz = from_text.plan.compensation["spaces"], from_npz.plan.compensation["spaces"]
    assert [s["tensor"] for s in spaces_text] == [s["tensor"] for s in spaces_npz] and len(spaces_text) == 4
    for a, b in zip(spaces_text, spaces_npz):
        np.testing.assert_allclose(a["mean"], b["mean"], rtol=MEAN_RTOL, atol=MEAN_ATOL, err_msg=a["tensor"])


def test_text_calibrated_in_shards_by_two_workers_gives_the_statistics_of_one_process(files):
    """40 sentences, one per sample: three shards on two worker processes, masks applied in each."""
    from graphprune.execution.executor import LocalExecutor

    common = dict(calib=str(files / "sentences.txt"), tokenizer=str(files / "tokenizer.json"), max_length=16,
                  ratio=0.5, importance="fluctuation", repair="mean", calib_samples=None, eval_split=0)
    alone = api.plan(str(files / "bert.onnx"), jobs=1, **common)
    with LocalExecutor(jobs=2) as executor:
        shared = api.plan(str(files / "bert.onnx"), executor=executor, **common)
        assert executor._pool is not None  # the shards ran in worker processes
    mask = text.tokenize_file(files / "sentences.txt", files / "tokenizer.json", max_length=16)["attention_mask"]
    for stats in (alone.calibration, shared.calibration):
        assert (stats.samples, stats.sequences, stats.tokens) == (SENTENCES, SENTENCES, int(mask.sum()))
    assert alone.calibration.spaces.keys() == shared.calibration.spaces.keys()
    for space, one in alone.calibration.spaces.items():
        two = shared.calibration.spaces[space]
        assert one.count == two.count and np.array_equal(one.total, two.total), space
        assert np.array_equal(one.squares, two.squares) and np.array_equal(one.absolute, two.absolute), space
    assert alone.plan.to_dict() == shared.plan.to_dict()


def test_prune_command_with_text_calibration(files, capsys):
    evaluation = text.encode(text.load_tokenizer(files / "tokenizer.json"), ["the big dog ran", "a cat"], 16)
    np.savez(files / "eval.npz", **evaluation)
    out = files / "slim.onnx"
    code = main(["prune", str(files / "bert.onnx"), "-o", str(out), "--ratio", "0.5", "--importance", "fluctuation",
                 "--calib", str(files / "sentences.txt"), "--tokenizer", str(files / "tokenizer.json"),
                 "--max-length", "16", "--calib-samples", "24", "--refit", "--data", str(files / "eval.npz")])
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0, captured.err
    assert "pruned model equals its oracle" in printed
    assert "compensation: 4 consumer nodes corrected" in printed and "4 re-fitted" in printed
    slim = onnx.load(out)
    before = sum(int(np.prod(t.dims)) for t in onnx.load(files / "bert.onnx").graph.initializer)
    after = sum(int(np.prod(t.dims)) for t in slim.graph.initializer)
    assert after < 0.7 * before
    outputs = run(slim, evaluation)
    assert outputs["last_hidden_state"].shape == (2, evaluation["input_ids"].shape[1], 32)


def test_text_feeds_batch_sentences_and_respect_fixed_input_sizes(files):
    dynamic = [InputSpec(name, np.dtype(np.int64), ("batch", "sequence")) for name in ("input_ids", "attention_mask")]
    feeds = list(text.text_feeds(files / "sentences.txt", files / "tokenizer.json", dynamic, limit=20))
    assert [len(f["input_ids"]) for f in feeds] == [text.TEXT_BATCH, 20 - text.TEXT_BATCH]
    assert all(sorted(f) == ["attention_mask", "input_ids"] for f in feeds)  # token_type_ids: not an input
    for feed in feeds:  # each batch padded to its own longest sentence, which is unpadded
        assert feed["attention_mask"][:, -1].any() and (feed["attention_mask"].sum(1) >= 3).all()
    fixed = [InputSpec(name, np.dtype(np.int64), (3, 10)) for name in ("input_ids", "attention_mask")]
    feeds = list(text.text_feeds(files / "sentences.txt", files / "tokenizer.json", fixed, limit=20))
    assert [f["input_ids"].shape for f in feeds] == [(3, 10)] * 6  # 20 // 3 batches, the last 2 dropped


def test_usage_errors_name_the_flag(files, monkeypatch):
    model = str(files / "bert.onnx")
    with pytest.raises(UsageError, match="--tokenizer"):
        api.plan(model, importance="fluctuation", calib=str(files / "sentences.txt"))
    np.savez(files / "ids.npz", input_ids=np.zeros((1, 4), np.int64))
    with pytest.raises(UsageError, match="text file"):
        api.plan(model, importance="fluctuation", calib=str(files / "ids.npz"), tokenizer=str(files / "tokenizer.json"))
    with pytest.raises(UsageError, match="max-length"):
        api.plan(model, importance="fluctuation", calib=str(files / "sentences.txt"),
                 tokenizer=str(files / "tokenizer.json"), max_length=1)
    monkeypatch.setitem(sys.modules, "tokenizers", None)  # import fails as if not installed
    with pytest.raises(UsageError, match="pip install"):
        api.plan(model, importance="fluctuation", calib=str(files / "sentences.txt"),
                 tokenizer=str(files / "tokenizer.json"))


def test_dynamic_sequence_is_counted_at_the_calibration_length(files):
    model = onnx.load(files / "bert.onnx")
    names = ("input_ids", "attention_mask", "token_type_ids")
    text_options = Options(calib=str(files / "sentences.txt"), tokenizer=str(files / "tokenizer.json"), max_length=16)
    assert with_data_shapes(text_options, model).input_shapes == {name: (1, 16) for name in names}
    arrays = {name: np.zeros((3, 7), np.int64) for name in names}
    assert with_data_shapes(Options(calib=arrays), model).input_shapes == {name: (1, 7) for name in names}
    given = {name: (1, 5) for name in names}
    assert with_data_shapes(Options(calib=arrays, input_shapes=given), model).input_shapes == given
