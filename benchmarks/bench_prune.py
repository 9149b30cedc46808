"""Speed of the core compiler: analysis + pruning (no file I/O) and the whole CLI call.

    python benchmarks/bench_prune.py                      # zoo ResNet-50 (full, ~25.6 M parameters)
    python benchmarks/bench_prune.py --model model.onnx --ratio 0.3 --repeats 7

Stages timed in-process on an in-memory model (median of --repeats runs, each on a fresh copy):
normalize, BatchNorm folding, shape inference + index, analysis (rules, groups, slots),
scoring + planning, surgery. "analysis + pruning" = index + analysis + planning + surgery
(the target is under 1 s on a 2-core machine). The CLI row times
``graphprune prune MODEL -o OUT --no-validate`` end to end in a subprocess (file I/O and
interpreter start included). Parameters and MACs before/after are printed too.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402

from graphprune.analysis.builder import analyze  # noqa: E402
from graphprune.core import apply_decision, as_model, count_params, decide, prepare  # noqa: E402
from graphprune.graph import GraphIndex  # noqa: E402
from graphprune.passes.fold import fold  # noqa: E402
from graphprune.profiling import profile  # noqa: E402

STAGES = ("normalize", "fold", "index", "analyze", "plan", "apply")


def _one_run(model: onnx.ModelProto, ratio: float) -> tuple[dict, onnx.ModelProto]:
    times = {}
    m = as_model(model)
    t = time.perf_counter()
    prepare(m)
    times["normalize"] = time.perf_counter() - t
    t = time.perf_counter()
    m = fold(m).model
    times["fold"] = time.perf_counter() - t
    t = time.perf_counter()
    index = GraphIndex(m)
    times["index"] = time.perf_counter() - t
    t = time.perf_counter()
    analysis = analyze(index)
    times["analyze"] = time.perf_counter() - t
    t = time.perf_counter()
    decision = decide(analysis, ratio=ratio)
    times["plan"] = time.perf_counter() - t
    t = time.perf_counter()
    apply_decision(m, analysis, decision)
    times["apply"] = time.perf_counter() - t
    return times, m


def _cli_seconds(path: Path, ratio: float, repeats: int) -> list[float]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "graphprune", "prune", str(path), "-o", str(Path(tmp) / "out.onnx"),
                            "--ratio", str(ratio), "--no-validate", "--force"], check=True,
                           stdout=subprocess.DEVNULL)
            out.append(time.perf_counter() - t)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="an .onnx file (default: zoo resnet50, size full)")
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    if args.model:
        path = Path(args.model)
        model = onnx.load(str(path))
    else:
        from models.zoo import build
        model = build("resnet50", size="full")
        path = Path(tempfile.mkdtemp()) / "resnet50_full.onnx"
        onnx.save(model, str(path))
    runs = [_one_run(model, args.ratio) for _ in range(args.repeats)]
    pruned = runs[-1][1]
    med = {s: statistics.median(r[0][s] for r in runs) for s in STAGES}
    core = med["index"] + med["analyze"] + med["plan"] + med["apply"]
    cli = _cli_seconds(path, args.ratio, max(3, args.repeats // 2))
    before, after = profile(model, progress=False), profile(pruned, progress=False)
    print(f"model: {path.name}, ratio {args.ratio}, median of {args.repeats} runs (seconds)\n")
    print("| stage | median s |")
    print("|---|---|")
    for s in STAGES:
        print(f"| {s} | {med[s]:.3f} |")
    print(f"| **analysis + pruning** (index+analyze+plan+apply) | **{core:.3f}** |")
    print(f"| with normalize + fold | {core + med['normalize'] + med['fold']:.3f} |")
    print(f"| whole CLI call (`prune --no-validate`, {len(cli)} runs) | {statistics.median(cli):.3f} |\n")
    print("| | before | after | kept |")
    print("|---|---|---|---|")
    print(f"| parameters | {count_params(model):,} | {count_params(pruned):,} | "
          f"{count_params(pruned) / count_params(model):.1%} |")
    print(f"| MACs | {before.total_macs:,} | {after.total_macs:,} | {after.total_macs / before.total_macs:.1%} |")
    print(f"\ncommand: python benchmarks/bench_prune.py {' '.join(argv or sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
