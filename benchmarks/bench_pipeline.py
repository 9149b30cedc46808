"""Speed of the pipeline against the I/O floor, and how it scales with graph size (issue 9).

    python benchmarks/bench_pipeline.py                 # ResNet-50 (zoo, full) + transformer chains
    python benchmarks/bench_pipeline.py --runs 7 --sizes 1000,5000,20000
    python benchmarks/bench_pipeline.py --only sizes --sizes 5000      # only the graph-size table

1. **Whole commands against the I/O floor** (ResNet-50, 25.6 M parameters, 98 MB): in fresh
   interpreters, interleaved run by run so every command sees the same machine noise (the order
   turns by one each run, so no command always follows the same one),
   ``python -c "onnx.save(onnx.load(M), OUT)"`` (the floor), ``python -c pass`` (the interpreter's
   own start, beside ``graphprune --version`` and ``--help``),
   ``graphprune prune M --ratio 0.5 --no-validate`` and ``graphprune prune M --ratio 0.5``
   (default checks). Medians and ratios to the floor's median. Every command runs once untimed
   first, and Python's bytecode cache is on (see :data:`ENV`).
2. **Stages in process** (same model, median of the runs): load, prepare (normalize + fold),
   analyze, score + decide, apply (surgery), save; "analysis + decision + surgery" is the
   target's sum (no I/O).
   **The default checks** (same model): the onnxruntime work each part needs, measured alone (the
   original's detached session with graph optimizations and its 4 drift runs, which ``prune``
   makes on a worker thread from load on; the oracle's zeroed weights, session and 2 runs, on a
   worker too; the pruned model's session and its 4 runs (its runs on the oracle's 2 feeds answer
   the drift's first 2); for comparison, the original's session made from its serialized bytes,
   as before detached models), then load to apply as ``prune`` runs it beside the original's
   worker, and the check stage's own time on the command's path. Set beside what the 2.5x target
   leaves for the checks (2.5 x floor - ``prune --no-validate``).
3. **Graph size**: transformer-style exports of 1k to 20k nodes (``models.transformers.scale``):
   analysis + decision + surgery in milliseconds per node, which should stay flat.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import onnx  # noqa: E402

from graphprune.io import save_model  # noqa: E402
from graphprune.pipeline import Options, analyze, apply, decide, load, prepare, score  # noqa: E402
from graphprune.validation.sizes import _CACHE as _SIZES_CACHE  # noqa: E402 - each run resolves anew, as a command

FLOOR = "import onnx, sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])"


#: the commands run with Python's bytecode cache on, as an installed package has it (pip compiles
#: every module when it installs; a sandbox's PYTHONDONTWRITEBYTECODE would make every run of an
#: editable checkout compile graphprune's ~170 modules from source again)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def commands(model: Path, out: Path, ratio: float) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "graphprune"]
    prune = [*cli, "prune", str(model), "-o", str(out), "--ratio", str(ratio), "--force"]
    return {"I/O floor (onnx.load + onnx.save)": [sys.executable, "-c", FLOOR, str(model), str(out)],
            "python -c pass (interpreter start)": [sys.executable, "-c", "pass"],
            "graphprune --version": [*cli, "--version"],
            "graphprune --help": [*cli, "--help"],
            f"prune --ratio {ratio} --no-validate": [*prune, "--no-validate"],
            f"prune --ratio {ratio} (default checks)": prune}


def whole_commands(model: Path, ratio: float, runs: int) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        cmds = commands(model, Path(tmp) / "out.onnx", ratio)
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for argv in cmds.values():  # one untimed run each: bytecode written, files in the page cache
            _timed(argv)
        items = list(cmds.items())
        for run in range(runs):  # the order turns each run: a command right after another runs faster
            for label, argv in items[run % len(items):] + items[:run % len(items)]:
                times[label].append(_timed(argv))
    floor = statistics.median(next(iter(times.values())))
    return [(label, statistics.median(t), statistics.median(t) / floor) for label, t in times.items()]


def stage_times(model_path: Path, ratio: float) -> dict[str, float]:
    options = Options(ratio=ratio, validate=False)
    out = {}
    t = time.perf_counter()
    source = load(model_path)
    out["load"] = time.perf_counter() - t
    t = time.perf_counter()
    prepared = prepare(source, options)
    out["prepare (normalize + fold)"] = time.perf_counter() - t
    t = time.perf_counter()
    analyzed = analyze(prepared, options)
    out["analyze"] = time.perf_counter() - t
    t = time.perf_counter()
    decided = decide(score(analyzed, options), Options(ratio=ratio, validate=False, count_macs=False))
    out["score + decide"] = time.perf_counter() - t
    t = time.perf_counter()
    pruned = apply(analyzed, decided.decision.removed, Options(ratio=ratio, validate=False, count_macs=False))
    out["apply (surgery)"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        save_model(pruned.model, Path(tmp) / "out.onnx")
        out["save"] = time.perf_counter() - t
    return out


def core_seconds(model: onnx.ModelProto, ratio: float, probe: bool = True) -> tuple[float, int, float]:
    """analysis + decision + surgery (no I/O, no folding) on a prepared model, with the sizes of
    its dynamic input dims found as ``prune`` finds them: onnxruntime tries them on a worker while
    the model is analysed (here from the analysis on; ``prune`` starts it before preparing), and
    nothing is remembered from an earlier run. Without ``probe``, the sizes are found before the
    clock starts (as when the user gives them). Returns wall seconds, the node count, and the CPU
    seconds of this process, every thread (steadier when others share the machine)."""
    from graphprune.validation.sizes import PendingShapes

    options = Options(ratio=ratio, validate=False, count_macs=False, keep_bn=True)
    source = load(model)
    prepared = prepare(source, options)
    _SIZES_CACHE.clear()
    if not probe:
        PendingShapes(source.proto).result()  # remembered: the timed PendingShapes is ready at once
    start, cpu = time.perf_counter(), time.process_time()
    shapes = PendingShapes(source.proto)
    analyzed = analyze(prepared, options)
    options = replace(options, input_shapes=shapes.result())
    decided = decide(score(analyzed, options), options)
    apply(analyzed, decided.decision.removed, options)
    return time.perf_counter() - start, len(prepared.model.graph), time.process_time() - cpu


def probe_seconds(model: onnx.ModelProto) -> float:
    """The size probe alone: sizes for the model's dynamic input dims, found in onnxruntime."""
    from graphprune.validation.sizes import resolve_input_shapes

    _SIZES_CACHE.clear()
    start = time.perf_counter()
    resolve_input_shapes(model)
    return time.perf_counter() - start


def print_table(headers, rows) -> None:
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    print()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--runs", type=int, default=5, help="interleaved runs of each command (default 5)")
    parser.add_argument("--sizes", default="1000,2000,5000,10000,20000", help="node counts of the chains")
    parser.add_argument("--only", choices=("resnet", "sizes"),
                        help="run only the ResNet-50 parts (1, 2) or only the graph-size part (3)")
    args = parser.parse_args(argv)
    if args.only != "sizes":
        resnet_tables(args.ratio, args.runs)
    if args.only != "resnet":
        size_table(args.sizes)
    print(f"command: python benchmarks/bench_pipeline.py {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    return 0


def resnet_tables(ratio: float, runs: int) -> None:
    """Parts 1 and 2: whole commands against the I/O floor, then the stages in process."""
    from models.zoo import build

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "resnet50.onnx"
        onnx.save(build("resnet50", size="full"), path)
        rows = whole_commands(path, ratio, runs)
        print(f"ResNet-50 (zoo, full, {path.stat().st_size / 2**20:.1f} MiB): median of {runs} interleaved runs\n")
        print_table(("command", "median s", "x I/O floor"), [(k, f"{s:.3f}", f"{r:.2f}") for k, s, r in rows])
        stages = [stage_times(path, ratio) for _ in range(runs)]
        med = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
        core = med["analyze"] + med["score + decide"] + med["apply (surgery)"]
        print_table(("stage (in process)", "median s"), [(k, f"{v:.3f}") for k, v in med.items()]
                    + [("**analysis + decision + surgery**", f"**{core:.3f}**")])
        checks = [check_work(path, ratio) for _ in range(runs)]
    work = {k: statistics.median(c[k] for c in checks) for k in checks[0]}
    floor, no_validate = rows[0][1], next(s for k, s, _ in rows if "no-validate" in k)
    print_table(("the default checks (in process)", "median s"), [(k, f"{v:.3f}") for k, v in work.items()]
                + [("left for the checks by the 2.5x target (2.5 x floor - no-validate)",
                    f"{2.5 * floor - no_validate:.3f}")])


def check_work(path: Path, ratio: float) -> dict[str, float]:
    """Seconds of the onnxruntime work the default checks need, each part alone (see part 2), and
    of the check stage as ``prune`` runs it (the original's worker started after load)."""
    from graphprune.graph.detached import detach, detach_proto
    from graphprune.pipeline.check import check, original_session
    from graphprune.validation.compare import pending_reference
    from graphprune.validation.sizes import resolve_input_shapes
    from graphprune.validation.feeds import make_feeds
    from graphprune.validation.runner import make_session

    source = load(path)
    options = Options(ratio=ratio, progress=False)
    options = replace(options, input_shapes=resolve_input_shapes(source.proto))  # fixed dims: no probe
    start = time.perf_counter()
    original = original_session(source, options)
    analyzed = analyze(prepare(source, options), options)
    pruned = apply(analyzed, decide(score(analyzed, options), options).decision.removed, options)
    prune_seconds = time.perf_counter() - start
    start = time.perf_counter()
    check(pruned, source, options, original=original)
    on_path = time.perf_counter() - start
    out = {}
    for label, model, exact, runs in (("original: session onnxruntime reads from its file + 4 runs (a worker, "
                                       "from load on)", lambda: source.file, False, 4),
                                      ("for comparison, the original detached: session + 4 runs",
                                       lambda: detach_proto(source.proto), False, 4),
                                      ("oracle: zeroed copies + detached session + 2 runs (a worker)",
                                       lambda: pruned.oracle_reference, True, 2),
                                      # its runs on the oracle's 2 feeds answer the drift's first 2
                                      ("pruned: detached session + 4 runs (2 remembered)", lambda: detach(pruned.model),
                                       True, 4)):
        start = time.perf_counter()
        pending_reference(model(), exact=exact, label=label, samples=runs, input_shapes=options.input_shapes).outputs()
        out[label] = time.perf_counter() - start
    start = time.perf_counter()  # how a session was made before: the weights serialized, then parsed
    session = make_session(source.proto, exact=False)
    for feed in make_feeds(source.proto, 4, input_shapes=options.input_shapes):
        session.run(None, feed)
    out["for comparison, the original serialized: session + 4 runs"] = time.perf_counter() - start
    out["load to apply, beside the original's worker"] = prune_seconds
    out["**check stage on the command's path**"] = on_path
    return out


def size_table(sizes: str) -> None:
    """Part 3: analysis + decision + surgery per node on transformer chains of the given node counts."""
    from models.transformers.scale import transformer_chain

    size_rows = []
    for n in (int(v) for v in sizes.split(",")):
        model = transformer_chain(n)
        runs = [core_seconds(model, 0.25) for _ in range(3)]
        seconds, nodes, cpu = statistics.median(r[0] for r in runs), runs[0][1], statistics.median(r[2] for r in runs)
        known = statistics.median(core_seconds(model, 0.25, probe=False)[0] for _ in range(3))
        probe = statistics.median(probe_seconds(model) for _ in range(3))
        size_rows.append((f"{nodes:,}", f"{seconds:.3f}", f"{1000 * seconds / nodes:.3f}", f"{1000 * cpu / nodes:.3f}",
                          f"{1000 * known / nodes:.3f}", f"{probe:.3f}"))
    print("transformer-style chains (models.transformers.scale), ratio 0.25, median of 3; the size probe for the "
          "dynamic input dims runs beside the analysis, as in prune; then the same with the sizes known "
          "beforehand, and the probe alone:\n")
    print_table(("nodes", "analysis + decision + surgery s", "ms per node", "CPU ms per node (all threads)",
                 "ms per node, sizes known", "size probe alone s"), size_rows)


if __name__ == "__main__":
    sys.exit(main())
