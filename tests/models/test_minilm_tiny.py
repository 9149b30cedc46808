"""The MiniLM graph builder on a tiny random BERT written to a folder here (no model package needed)."""
from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from models.minilm import INPUTS, MissingModelError, build_minilm, find_model_files
from tests.helpers.onnxrt import session

from tests.helpers import minilm_reference as reference
from .test_safetensors_reader import write_safetensors

HIDDEN, HEADS, LAYERS, INTERMEDIATE, VOCAB, POSITIONS = 8, 2, 2, 12, 20, 16
CONFIG = {"hidden_act": "gelu", "hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_hidden_layers": LAYERS,
          "intermediate_size": INTERMEDIATE, "layer_norm_eps": 1e-12, "position_embedding_type": "absolute"}


def _tiny_weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return rng.standard_normal(shape).astype(np.float32) * np.float32(0.5)

    weights = {"embeddings.position_ids": np.arange(POSITIONS, dtype=np.int64)[None],
               "embeddings.word_embeddings.weight": normal(VOCAB, HIDDEN),
               "embeddings.position_embeddings.weight": normal(POSITIONS, HIDDEN),
               "embeddings.token_type_embeddings.weight": normal(2, HIDDEN),
               "pooler.dense.weight": normal(HIDDEN, HIDDEN), "pooler.dense.bias": normal(HIDDEN)}
    norms = ["embeddings.LayerNorm"]
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        shapes = {f"{p}.attention.self.query": (HIDDEN, HIDDEN), f"{p}.attention.self.key": (HIDDEN, HIDDEN),
                  f"{p}.attention.self.value": (HIDDEN, HIDDEN), f"{p}.attention.output.dense": (HIDDEN, HIDDEN),
                  f"{p}.intermediate.dense": (INTERMEDIATE, HIDDEN), f"{p}.output.dense": (HIDDEN, INTERMEDIATE)}
        for key, (fout, fin) in shapes.items():
            weights.update({f"{key}.weight": normal(fout, fin), f"{key}.bias": normal(fout)})
        norms += [f"{p}.attention.output.LayerNorm", f"{p}.output.LayerNorm"]
    for key in norms:
        weights.update({f"{key}.weight": 1 + normal(HIDDEN), f"{key}.bias": normal(HIDDEN)})
    return weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bert")
    weights = _tiny_weights()
    (folder / "model.safetensors").write_bytes(write_safetensors(weights))
    (folder / "config.json").write_text(json.dumps(CONFIG), encoding="utf-8")
    return folder, weights


def test_tiny_bert_matches_reference_from_folder_and_zip(tiny, tmp_path):
    folder, weights = tiny
    archive = tmp_path / "model.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("model.safetensors", "config.json"):
            zf.write(folder / name, name)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, VOCAB, (3, 7)).astype(np.int64)
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=np.int64)
    expected = reference.sentence_embeddings(weights, ids, mask, layers=LAYERS, heads=HEADS, epsilon=1e-12)
    for origin in (folder, archive):
        got = session(build_minilm(find_model_files(origin))).run(None, dict(zip(INPUTS, (ids, mask))))[0]
        assert got.shape == (3, HIDDEN)
        np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unsupported_config_and_missing_path_are_refused(tiny, tmp_path):
    folder, _ = tiny
    with pytest.raises(MissingModelError, match="no such folder"):
        find_model_files(tmp_path / "absent")
    (tmp_path / "config.json").write_text(json.dumps({**CONFIG, "hidden_act": "relu"}), encoding="utf-8")
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match="hidden_act='relu'"):
        build_minilm(find_model_files(tmp_path))
