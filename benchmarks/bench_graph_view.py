"""onnx-graphsurgeon or onnx-ir as the editable graph: time and peak memory of one load-edit-save.

    python benchmarks/bench_graph_view.py                 # ResNet-50 (full) and a 2.4 GB Gemm chain
    python benchmarks/bench_graph_view.py --layers 3      # a 0.8 GB Gemm chain (below the 2 GB limit)
    python benchmarks/bench_graph_view.py --runs 5 --big-runs 3

For each library and each model, a fresh interpreter (one per run, runs interleaved) does:

* ``load``: read the file. graphsurgeon needs the tensors inside the protobuf
  (``onnx.load`` with external data); onnx-ir reads the skeleton (``onnx.load`` without external
  data) and maps the external tensors when they are read;
* ``graph view``: ``onnx_graphsurgeon.import_onnx`` / ``onnx_ir.serde.deserialize_model``;
* ``edit``: remove every Relu, its consumers (and the graph outputs) read its input instead;
* ``export``: back to an ``onnx.ModelProto`` (``onnx_graphsurgeon.export_onnx`` /
  ``onnx_ir.serde.serialize_model``);
* ``save``: a model without external data is saved inline (``onnx.save`` of the exported
  ModelProto, both libraries); one with external data is saved with external data:
  ``onnx.save(..., save_as_external_data=True)`` of graphsurgeon's ModelProto, ``onnx_ir.save(...,
  external_data=...)`` for onnx-ir (its exported ModelProto still points into the input's data file).

Times are wall-clock seconds in the process (interpreter start and imports excluded); peak RSS is
the process's VmHWM (imports included; the resident set right after the imports is its own column);
× weights is peak RSS over the initializers' bytes. Each cell is the median over the runs of that
column.
"""
from __future__ import annotations

import argparse
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

ROOT = Path(__file__).resolve().parent.parent
LIBRARIES = ("onnx-graphsurgeon", "onnx-ir")
PHASES = ("load", "graph view", "edit", "export", "save")


class Clock:
    """Seconds of each phase, in order."""

    def __init__(self):
        self.phases: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = now - self._last
        self._last = now


def _remove_relus_graphsurgeon(graph) -> int:
    relus = [node for node in graph.nodes if node.op == "Relu"]
    for node in relus:
        source, result = node.inputs[0], node.outputs[0]
        for consumer in list(result.outputs):
            for index, tensor in enumerate(consumer.inputs):
                if tensor is result:
                    consumer.inputs[index] = source
        if result in graph.outputs:  # a graph output needs a type: the Relu's output gives it
            source.dtype, source.shape = source.dtype or result.dtype, source.shape or result.shape
            graph.outputs = [source if tensor is result else tensor for tensor in graph.outputs]
        node.inputs.clear()
        node.outputs.clear()
    graph.nodes = [node for node in graph.nodes if node.op != "Relu"]
    return len(relus)


def _remove_relus_ir(graph) -> int:
    relus = [node for node in graph if node.op_type == "Relu"]
    for node in relus:
        source, result = node.inputs[0], node.outputs[0]
        for consumer, index in list(result.uses()):
            consumer.replace_input_with(index, source)
        for position, value in enumerate(graph.outputs):
            if value is result:  # a graph output needs a type: the Relu's output gives it
                source.type, source.shape = source.type or result.type, source.shape or result.shape
                graph.outputs[position] = source
        graph.remove(node, safe=True)
    return len(relus)


def _with_graphsurgeon(model_path: str, out: str, external: bool, clock: Clock) -> int:
    proto = onnx.load(model_path, load_external_data=True)
    clock.lap("load")
    graph = onnx_graphsurgeon.import_onnx(proto)
    clock.lap("graph view")
    removed = _remove_relus_graphsurgeon(graph)
    clock.lap("edit")
    exported = onnx_graphsurgeon.export_onnx(graph)
    clock.lap("export")
    if external:
        onnx.save(exported, out, save_as_external_data=True, location=Path(out).name + ".data")
    else:
        onnx.save(exported, out)
    clock.lap("save")
    return removed


def _with_ir(model_path: str, out: str, external: bool, clock: Clock) -> int:
    proto = onnx.load(model_path, load_external_data=False)
    clock.lap("load")
    model = onnx_ir.serde.deserialize_model(proto)
    onnx_ir.external_data.set_base_dir(model.graph, str(Path(model_path).parent))
    clock.lap("graph view")
    removed = _remove_relus_ir(model.graph)
    clock.lap("edit")
    exported = onnx_ir.serde.serialize_model(model)
    clock.lap("export")
    if external:
        onnx_ir.save(model, out, external_data=Path(out).name + ".data")
    else:
        onnx.save(exported, out)
    clock.lap("save")
    return removed


def _status_bytes(field: str) -> int:
    """``VmHWM`` (peak resident set) or ``VmRSS`` (resident set now) of this process, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def child(library: str, model_path: str, out: str, external: bool) -> dict:
    """One load-edit-export-save in this process: phase seconds, Relu nodes removed, peak RSS."""
    global onnx_graphsurgeon, onnx_ir  # imported before the clock starts (import time is not a phase)
    if library == "onnx-graphsurgeon":
        import onnx_graphsurgeon
    else:
        import onnx_ir
    imported = _status_bytes("VmRSS")
    clock = Clock()
    run = _with_graphsurgeon if library == "onnx-graphsurgeon" else _with_ir
    removed = run(model_path, out, external, clock)
    return {"phases": clock.phases, "removed": removed, "imports": imported, "peak": _status_bytes("VmHWM")}


def measure(library: str, model_path: Path, out: Path, external: bool) -> dict:
    """``child`` in a fresh interpreter (so that the peak RSS is this run's alone)."""
    command = [sys.executable, __file__, "--child", library, str(model_path), str(out)]
    proc = subprocess.run(command + (["--external"] if external else []), capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{library} on {model_path.name} failed (exit {proc.returncode}): {proc.stderr[-600:]}")
    return json.loads(proc.stdout.splitlines()[-1])


def weight_bytes(model_path: Path) -> tuple[int, bool]:
    """(bytes of the initializers, whether any is stored as external data), from the skeleton only."""
    skeleton = onnx.load(str(model_path), load_external_data=False)
    total, external = 0, False
    for tensor in skeleton.graph.initializer:
        itemsize = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize
        total += int(np.prod(tensor.dims, dtype=np.int64)) * itemsize
        external |= tensor.data_location == onnx.TensorProto.EXTERNAL
    return total, external


def output_path(workdir: Path, library: str, model_key: str) -> Path:
    """Where the run of ``library`` on ``model_key`` saves its edited model."""
    return workdir / f"{library}-{model_key}.onnx"


def write_models(workdir: Path, args) -> dict[str, tuple[str, Path]]:
    """model key -> (label, path): the zoo ResNet-50 and the Gemm chain of bench_memory."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_memory import write_model
    from models.zoo import build

    resnet = workdir / "resnet50.onnx"
    onnx.save(build("resnet50", size=args.resnet_size), str(resnet))
    chain, _ = write_model(workdir, args.width, args.layers)
    return {"resnet50": (f"ResNet-50 ({args.resnet_size})", resnet),
            "gemm-chain": (f"{args.layers} x Gemm {args.width}x{args.width}", chain)}


def benchmark(models: dict[str, tuple[str, Path]], runs: dict[str, int], workdir: Path) -> list[dict]:
    """Interleaved runs of every library on every model; one row per (library, model) with medians."""
    info = {key: weight_bytes(path) for key, (_, path) in models.items()}
    samples: dict[tuple[str, str], list[dict]] = {(lib, key): [] for key in models for lib in LIBRARIES}
    for round_index in range(max(runs.values())):
        for key, (_, path) in models.items():
            if round_index >= runs[key]:
                continue
            for library in LIBRARIES:
                out = output_path(workdir, library, key)
                samples[library, key].append(measure(library, path, out, external=info[key][1]))
    rows = []
    for (library, key), results in samples.items():
        removed = {r["removed"] for r in results}
        phases = {p: statistics.median(r["phases"][p] for r in results) for p in PHASES}
        total = statistics.median(sum(r["phases"].values()) for r in results)
        rows.append({"library": library, "model": key, "label": models[key][0], "weights": info[key][0],
                     "external": info[key][1], "runs": len(results), "removed": removed.pop() if len(removed) == 1
                     else sorted(removed), "phases": phases, "total": total,
                     "imports": statistics.median(r["imports"] for r in results),
                     "peak": statistics.median(r["peak"] for r in results)})
    return rows


def format_table(rows: list[dict]) -> str:
    """The Markdown table of ``benchmark``'s rows."""
    header = ["model", "weights", "library", *(f"{p} s" for p in PHASES), "total s", "RSS after imports", "peak RSS", "× weights"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 3 + "---:|" * (len(header) - 3)]
    for row in rows:
        storage = "external data" if row["external"] else "inline"
        cells = [f"{row['label']}, {row['runs']} run{'s' if row['runs'] > 1 else ''}",
                 f"{row['weights'] / 1e6:,.1f} MB ({storage})", row["library"],
                 *(f"{row['phases'][p]:.2f}" for p in PHASES), f"{row['total']:.2f}",
                 f"{row['imports'] / 1e6:,.0f} MB", f"{row['peak'] / 1e6:,.0f} MB", f"{row['peak'] / row['weights']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of the ResNet-50 rows (median; default 3)")
    parser.add_argument("--big-runs", type=int, default=1, help="runs of the Gemm chain rows (default 1)")
    parser.add_argument("--layers", type=int, default=9, help="Gemm layers (default 9, as bench_memory: 2.4 GB)")
    parser.add_argument("--width", type=int, default=8192, help="Gemm size (default 8192, as bench_memory)")
    parser.add_argument("--resnet-size", choices=("small", "full"), default="full", help="zoo size (default full)")
    parser.add_argument("--workdir", help="keep the models and outputs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    command = shlex.join(["python", "benchmarks/bench_graph_view.py", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="graphprune-gsbench-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        models = write_models(workdir, args)
        rows = benchmark(models, {"resnet50": args.runs, "gemm-chain": args.big_runs}, workdir)
    for key, (label, _) in models.items():
        removed = {row["library"]: row["removed"] for row in rows if row["model"] == key}
        print(f"{label}: Relu nodes removed: {', '.join(f'{lib} {n}' for lib, n in removed.items())}")
    print()
    print(format_table(rows))
    print(f"\n`{command}`")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(sys.argv[2], sys.argv[3], sys.argv[4], external="--external" in sys.argv[5:])))
        sys.exit(0)
    sys.exit(main())
