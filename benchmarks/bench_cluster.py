"""The Ray executor: sensitivity and budget search on yolox-nano with 1 and 2 Ray workers, the cost
of one task and the bytes it moves, and from those an estimate for ResNet-50 on a larger cluster.

    python benchmarks/bench_cluster.py                       # yolox-nano, 64 photos, cosine 0.01
    python benchmarks/bench_cluster.py --images 64 --budget 0.01 --no-resnet50

One local Ray (2 CPUs, every process on 127.0.0.1, its files in a temporary folder removed at the
end) serves ``RayExecutor(jobs=1)`` and ``RayExecutor(jobs=2)`` in turn; each is started (actors
up) before its runs are timed. The calibration photos are those of ``bench_quality.py`` (seeded
crops of scikit-image's photos, nothing downloaded: :mod:`quality_data`). For every run the table splits the wall time
into what the workers did (calibration shards, zeroed-slice evaluations = sensitivity curves,
repaired evaluations = search probes; payload transfer and worker setup included) and what the
driver did alone (load, analysis, planning, the final check; calibration too with one worker). Both
runs must give the same table and bytes.

The task costs are measured in this process (one thread, no Ray) on yolox-nano and on the zoo's
full-size ResNet-50 (224x224, random weights and inputs: the cost of a task does not depend on
them). The ResNet-50 estimate then assumes the budget search's shape measured on yolox-nano (the
fraction of groups still measured in each sensitivity round, the number of search rounds) and a
network of :data:`BANDWIDTH` bytes/s from the driver to every worker (each worker pulls the
payloads once). It prints the time with 8 and 64 workers and the part no worker count removes.
"""
from __future__ import annotations

import argparse
import math
import os
import pickle
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for extra in (ROOT, ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from quality_data import MODELS  # noqa: E402

from graphprune.api import prune, sensitivity  # noqa: E402
from graphprune.execution.executor import Executor  # noqa: E402

#: bytes/s from the driver to a worker assumed by the estimate (10 Gbit/s Ethernet)
BANDWIDTH = 1.25e9
#: images of the ResNet-50 estimate
ESTIMATE_IMAGES = 100


class TimedExecutor(Executor):
    """Another executor, with the wall time and the tasks of its maps counted by context label."""

    def __init__(self, inner: Executor):
        self.inner = inner
        self.seconds: Counter = Counter()
        self.tasks: Counter = Counter()

    @property
    def width(self) -> int:
        return self.inner.width

    def map(self, fn, tasks, *, context, progress=None):
        start = time.perf_counter()
        try:
            return self.inner.map(fn, tasks, context=context, progress=progress)
        finally:
            self.seconds[context.label] += time.perf_counter() - start
            self.tasks[context.label] += len(tasks)

    def close(self, *, abort: bool = False) -> None:
        self.inner.close(abort=abort)


def start_local_ray(temp_dir: str) -> None:
    """A local Ray of 2 CPUs on loopback only (Ray swaps 127.0.0.1 for a network address otherwise)."""
    os.environ.update(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled",
                      RAY_TMPDIR=temp_dir)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    os.makedirs(os.path.join(temp_dir, "ray"), exist_ok=True)
    import ray

    ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, logging_level="WARNING", log_to_driver=False)


def timed_runs(model: str, calib: list, budget: float, workers: int) -> dict:
    """Sensitivity and the budget search with ``workers`` Ray actors: times by kind, and the results."""
    from graphprune.execution.ray_executor import RayExecutor
    from graphprune.graph.model import to_proto

    executor = TimedExecutor(RayExecutor(jobs=workers))
    start = time.perf_counter()
    assert len(set(executor.inner.slot_pids())) == workers  # every actor answers: they are up
    out = {"workers": workers, "startup": time.perf_counter() - start, "load": os.getloadavg()[0]}
    start = time.perf_counter()
    result = sensitivity(model, calib=calib, executor=executor, metric="cosine")
    out["sensitivity"] = {"seconds": time.perf_counter() - start, "by kind": dict(executor.seconds),
                          "tasks": dict(executor.tasks), "table": result.to_dict()}
    executor.seconds.clear(), executor.tasks.clear()
    start = time.perf_counter()
    pruned = prune(model, calib=calib, max_drift=budget, executor=executor)
    out["budget"] = {"seconds": time.perf_counter() - start, "by kind": dict(executor.seconds),
                     "tasks": dict(executor.tasks), "bytes": to_proto(pruned.graph).SerializeToString(),
                     "record": pruned.budget, "macs_removed": 1 - pruned.macs_after / pruned.macs_before}
    executor.close()
    return out


def run_table(runs: list[dict]) -> list[str]:
    kinds = ("calibration shards", "zeroed-slice evaluations", "pruned-and-repaired evaluations")
    lines = ["| run | Ray workers | wall s | speedup | calibration s | zeroed-slice evals s (n) | repaired evals s (n) "
             "| driver alone s |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for what in ("sensitivity", "budget"):
        base = runs[0][what]["seconds"]
        for run in runs:
            r = run[what]
            seconds = [r["by kind"].get(k, 0.0) for k in kinds]
            counts = [r["tasks"].get(k, 0) for k in kinds]
            lines.append(f"| {what} | {run['workers']} | {r['seconds']:.1f} | {base / r['seconds']:.2f}x | "
                         f"{seconds[0]:.1f} | {seconds[1]:.1f} ({counts[1]}) | {seconds[2]:.1f} ({counts[2]}) | "
                         f"{r['seconds'] - sum(seconds):.1f} |")
    return lines


def task_costs(model, calib: list, budget: float) -> dict:
    """Seconds and bytes of each kind of task for ``model`` (in this process, one thread, no Ray)."""
    from graphprune.calibration.collect import SHARD_SAMPLES
    from graphprune.execution.candidates import Candidate, zeroing_state
    from graphprune.execution.executor import LocalExecutor
    from graphprune.pipeline import Options, analyze, apply, check, decide, load, prepare, score
    from graphprune.pipeline.budget import CURVE_SAMPLES, SEARCH_SAMPLES
    from graphprune.pipeline.candidates import Engine, repair_state
    from graphprune.planning.select import select_by_ratio
    from graphprune.validation.split import DataSplit
    from graphprune.vocabulary import DATA_REPAIRS

    options = Options(calib=calib, max_drift=budget)
    source = load(model)
    split = DataSplit(calib, source.proto, eval_split=options.eval_split, seed=options.seed)
    start = time.perf_counter()
    analyzed = analyze(prepare(source, options), options)
    analysis_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scored = score(analyzed, options, split)
    shard_seconds = (time.perf_counter() - start) * SHARD_SAMPLES / split.calibration_count
    groups = analyzed.analysis.prunable_groups
    quarter = {g.id: select_by_ratio(g, scored.scorer.score(g, analyzed.analysis.index), 0.25) for g in groups}
    solo = [{gid: slots} for gid, slots in list(quarter.items())[:3]]
    search = split.search_feeds(SEARCH_SAMPLES)
    repair_samples = split.repair_feeds(len(search)) if DATA_REPAIRS & set(options.repair) else []
    with LocalExecutor(jobs=1) as here:
        engine = Engine(analyzed, scored.stats, search, options, here, CURVE_SAMPLES, repair_samples)
        state = {"solo": _seconds(zeroing_state, engine.zeroing.payload),
                 "combined": _seconds(repair_state, engine.repairing.payload)}
        engine.solo(solo[:1]), engine.combined([quarter])  # the states are built: the next calls are tasks alone
        solo_seconds = min(_seconds(engine.solo, [one]) for one in solo)
        combined_seconds = min(_seconds(engine.combined, [quarter]) for _ in range(2))
    # the final check: what the driver does with the chosen plan (apply, then oracle and drift on held-out samples)
    fixed = Options(calib=calib, ratio=0.25)
    decided = decide(scored, fixed)
    start = time.perf_counter()
    check(apply(analyzed, decided.decision.removed, fixed, compensation=decided.compensation, feeds=split.calibration),
          source, fixed, split)
    final = time.perf_counter() - start
    return {"groups": len(groups), "analysis": analysis_seconds, "shard": shard_seconds, "final": final,
            "state": state,
            "solo": solo_seconds, "combined": combined_seconds,
            "payload": {"solo": _size(engine.zeroing.payload), "combined": _size(engine.repairing.payload),
                        "model": len(engine.zeroing.payload.model), "sample": _size(calib[0])},
            "task": {"solo": _size(Candidate.of(solo[0], CURVE_SAMPLES)), "combined": _size(Candidate.of(quarter))},
            "result": {"evaluation": _size(engine.combined([quarter])[0]), "shard": _size(scored.stats)}}


def _seconds(call, argument) -> float:
    start = time.perf_counter()
    call(argument)
    return time.perf_counter() - start


def _size(value) -> int:
    return len(pickle.dumps(value, protocol=5))


def cost_table(costs: dict) -> list[str]:
    lines = ["| model | groups | worker setup s (solo / repaired) | solo eval s (8 samples) | repaired eval s "
             "(32 samples) | calibration shard s (16) | final check s | payload MB (solo / repaired; model, one "
             "sample) | task bytes (solo / combined) | result bytes (eval / shard stats) |",
             "|---|---:|---|---:|---:|---:|---:|---|---|---|"]
    for name, c in costs.items():
        p, t, r = c["payload"], c["task"], c["result"]
        lines.append(f"| {name} | {c['groups']} | {c['state']['solo']:.2f} / {c['state']['combined']:.2f} | "
                     f"{c['solo']:.3f} | {c['combined']:.2f} | {c['shard']:.2f} | {c['final']:.1f} | "
                     f"{p['solo'] / 1e6:.1f} / {p['combined'] / 1e6:.1f}; {p['model'] / 1e6:.1f}, "
                     f"{p['sample'] / 1e6:.2f} | {t['solo']} / {t['combined']} | {r['evaluation']} / "
                     f"{r['shard'] / 1e6:.2f} MB |")
    return lines


def search_shape(record) -> dict:
    """What the search measured: the fraction of groups in each sensitivity round, and its search rounds."""
    alive = [sum(1 for c in record.curves if len(c.points) > r) for r in range(max(len(c.points) for c in record.curves))]
    rounds = max((p["round"] for p in record.probes), default=0)
    return {"alive": [n / len(record.curves) for n in alive], "rounds": rounds,
            "probes": len(record.probes), "final checks": record.evaluations["final check"]}


def estimate(costs: dict, shape: dict, workers: int, images: int = ESTIMATE_IMAGES) -> dict:
    """Seconds of a budget search of ``images`` images with ``workers`` workers, by part."""
    calibration_shards = math.ceil(images * 0.75 / 16)
    per_round = [max(1, round(f * costs["groups"])) for f in shape["alive"]]
    # what every worker pulls once: both evaluation payloads and the calibration payload (the model and
    # the calibration samples, given as arrays)
    p = costs["payload"]
    payload = p["solo"] + p["combined"] + p["model"] + round(images * 0.75) * p["sample"]
    parts = {
        "payload transfer": workers * payload / BANDWIDTH,
        "worker setup": costs["state"]["solo"] + costs["state"]["combined"],
        "calibration": math.ceil(calibration_shards / workers) * costs["shard"]
        + calibration_shards * costs["result"]["shard"] / BANDWIDTH,
        "sensitivity rounds": sum(math.ceil(n / workers) for n in per_round) * costs["solo"],
        "search rounds": shape["rounds"] * math.ceil(2 / workers) * costs["combined"],
        "driver: analysis and final check": costs["analysis"] + shape["final checks"] * costs["final"],
    }
    floor = {"sensitivity rounds": len(per_round) * costs["solo"], "search rounds": shape["rounds"] * costs["combined"],
             "calibration": costs["shard"], "worker setup": parts["worker setup"],
             "driver: analysis and final check": parts["driver: analysis and final check"]}
    return {"workers": workers, "parts": parts, "total": sum(parts.values()), "floor": sum(floor.values()),
            "tasks per round": per_round}


def estimate_lines(costs: dict, shape: dict) -> list[str]:
    rows = [estimate(costs, shape, w) for w in (1, 8, 64)]
    lines = [f"ResNet-50 (224x224), {ESTIMATE_IMAGES} images (75 calibrate, 25 held out), {costs['groups']} groups; "
             f"sensitivity tasks per round {rows[0]['tasks per round']}, {shape['rounds']} search rounds of 2 "
             f"probes (the shape measured on yolox-nano), {BANDWIDTH / 1e9:.2f} GB/s to each worker:", "",
             "| part | " + " | ".join(f"{r['workers']} worker(s) s" for r in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    for part in rows[0]["parts"]:
        lines.append(f"| {part} | " + " | ".join(f"{r['parts'][part]:.1f}" for r in rows) + " |")
    lines.append("| **total** | " + " | ".join(f"**{r['total']:.0f}**" for r in rows) + " |")
    best = min(range(1, 257), key=lambda w: estimate(costs, shape, w)["total"])
    lines += ["", f"Past {max(rows[0]['tasks per round'])} workers (the widest sensitivity round) no task waits "
              f"for a worker, and what no worker count removes is {rows[-1]['floor']:.0f} s: one solo evaluation "
              f"per sensitivity round, every search round (2 probes each: 2 workers already run them at full "
              f"width), one worker setup, the driver's analysis and final check. Each added worker also pulls the "
              f"payloads (here all from the driver: a pessimistic bound, Ray nodes also pull from each other), so "
              f"the estimate is fastest at {best} workers ({estimate(costs, shape, best)['total']:.0f} s)."]
    return lines


def resnet50_data(count: int) -> list:
    import numpy as np

    rng = np.random.default_rng(0)
    return [{"input": rng.standard_normal((1, 3, 224, 224)).astype(np.float32)} for _ in range(count)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=64, help="calibration photos (default 64)")
    parser.add_argument("--budget", type=float, default=0.01, help="--max-drift, cosine (default 0.01)")
    parser.add_argument("--no-resnet50", action="store_true", help="skip the ResNet-50 task costs and estimate")
    args = parser.parse_args(argv)
    spec = MODELS["yolox-nano"]
    path = spec.path
    if not path.is_file():
        raise SystemExit(f"bench_cluster: {path} not found (the third-party models live in ../shared/models/)")
    calib = spec.calibration(args.images)
    temp_dir = tempfile.mkdtemp(prefix="gp-ray-bench-")
    try:
        start_local_ray(temp_dir)
        runs = [timed_runs(str(path), calib, args.budget, workers) for workers in (1, 2)]
    finally:
        import ray

        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)
    same = runs[0]["sensitivity"]["table"] == runs[1]["sensitivity"]["table"] and \
        runs[0]["budget"]["bytes"] == runs[1]["budget"]["bytes"]
    record = runs[0]["budget"]["record"]
    print("\n".join(run_table(runs)))
    print(f"\nidentical sensitivity tables and written models with 1 and 2 workers: {'yes' if same else 'NO'}; "
          f"budget search: {dict(record.evaluations)} evaluations, {100 * runs[0]['budget']['macs_removed']:.1f}% "
          f"of the MACs removed; actors up in {runs[0]['startup']:.1f} / {runs[1]['startup']:.1f} s; load "
          f"average before the runs {runs[0]['load']:.1f} / {runs[1]['load']:.1f} (2 cores)\n")
    costs = {"yolox-nano (416x416)": task_costs(str(path), calib, args.budget)}
    if not args.no_resnet50:
        from models.zoo import build

        costs["ResNet-50 (224x224)"] = task_costs(build("resnet50", size="full"), resnet50_data(44), args.budget)
    print("\n".join(cost_table(costs)))
    if not args.no_resnet50:
        print()
        print("\n".join(estimate_lines(costs["ResNet-50 (224x224)"], search_shape(record))))
    print(f"\n`python benchmarks/bench_cluster.py {shlex.join(argv if argv is not None else sys.argv[1:])}`")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
