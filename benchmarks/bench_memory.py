"""Peak memory of pruning a model larger than the 2 GB protobuf limit (external data in and out).

    python benchmarks/bench_memory.py                    # ~2.4 GB of weights (9 Gemm layers of 8192x8192)
    python benchmarks/bench_memory.py --layers 3 --cli   # ~0.8 GB, also through the CLI as shipped
    python benchmarks/bench_memory.py --cli --checks     # also the CLI with its default checks
    python benchmarks/bench_memory.py --ratio 0.05       # the pruned model is above 2 GB too

The model (a chain of Gemm + Relu, float32, external data) is written straight to disk one
layer at a time, so the benchmark itself never holds it. Each measurement runs in a fresh
subprocess; its peak resident set (``ru_maxrss`` from ``wait4``) is compared with the weight
bytes. The rows:

* ``python + imports``: the interpreter with graphprune, onnx and onnxruntime imported;
* ``load``: :func:`graphprune.io.load_model` (reads every external tensor);
* ``I/O floor``: ``onnx.load`` + ``onnx.save`` of the same model with external data (the time
  and memory any tool needs just to read and write it);
* ``load + prune + save``: the pipeline's stages (load, prepare, analyze, score, decide, apply)
  and a streaming save with external data, in process;
* ``graphprune prune --no-validate`` (``--cli``): the command as shipped (parameter and MAC
  counts included).
* ``graphprune prune`` (``--checks``): the command with its default checks: the original's,
  the oracle's and the pruned model's onnxruntime sessions (weights handed over as arrays).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

IMPORTS = "import graphprune.cli, graphprune.api, graphprune.pipeline, graphprune.io, onnxruntime"
LOAD = "from graphprune.io import load_model; load_model({model!r})"
FLOOR = """
import onnx
onnx.save(onnx.load({model!r}), {out!r}, save_as_external_data=True, location="floor.onnx.data")
"""
PIPELINE = """
from graphprune.io import save_model
from graphprune.pipeline import Options, analyze, apply, decide, load, prepare, score
options = Options(ratio={ratio}, validate=False, count_macs=False)
analyzed = analyze(prepare(load({model!r}), options), options)
pruned = apply(analyzed, decide(score(analyzed, options), options).decision.removed, options)
save_model(pruned.model, {out!r}, external_data=True)
"""
CLI = """
from graphprune.cli import main
code = main({argv!r})
assert code == 0, code
"""


def write_model(folder: Path, width: int, layers: int, seed: int = 0) -> tuple[Path, int]:
    """A Gemm+Relu chain with external data, written tensor by tensor; returns (path, weight bytes)."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    data_path = folder / "big.onnx.data"
    offset = 0
    with open(data_path, "wb") as fh:
        x = "x"
        for i in range(layers):
            for name, shape in ((f"w{i}", (width, width)), (f"b{i}", (width,))):
                array = rng.standard_normal(shape, dtype=np.float32)
                array *= np.float32(1.0 / np.sqrt(width)) if len(shape) == 2 else np.float32(0.1)
                raw = array.tobytes()
                fh.write(raw)
                tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape,
                                     data_location=TensorProto.EXTERNAL)
                for key, value in (("location", data_path.name), ("offset", str(offset)), ("length", str(len(raw)))):
                    entry = tensor.external_data.add()
                    entry.key, entry.value = key, value
                inits.append(tensor)
                offset += len(raw)
                del array, raw
            y = "y" if i == layers - 1 else f"r{i}"
            nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [f"g{i}"], name=f"gemm{i}", transB=1))
            nodes.append(helper.make_node("Relu", [f"g{i}"], [y], name=f"relu{i}"))
            x = y
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, width])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "big.onnx"
    path.write_bytes(model.SerializeToString())
    return path, offset


#: appended to every measured script: the process's own high-water mark (VmHWM is reset by exec,
#: unlike the rusage of a forked child, which inherits the parent's resident pages)
REPORT = """
for line in open('/proc/self/status'):
    if line.startswith('VmHWM:'):
        sys.stderr.write('PEAK ' + str(int(line.split()[1]) * 1024) + '\\n')
"""


def peak_rss(code: str) -> tuple[float, float]:
    """(peak RSS in bytes, seconds) of ``code`` run in a fresh interpreter."""
    start = time.perf_counter()
    script = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n{code}\n{REPORT}"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    peaks = [line for line in proc.stderr.splitlines() if line.startswith("PEAK ")]
    if proc.returncode != 0 or not peaks:
        raise SystemExit(f"measurement failed with exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return float(peaks[-1].split()[1]), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=8192, help="Gemm size (default 8192: 256 MiB per weight)")
    parser.add_argument("--layers", type=int, default=9, help="number of Gemm layers (default 9: 2.4 GB)")
    parser.add_argument("--ratio", type=float, default=0.5, help="pruning ratio (default 0.5; 0.05 keeps the "
                        "output above 2 GB too)")
    parser.add_argument("--cli", action="store_true", help="also measure `graphprune prune --no-validate`")
    parser.add_argument("--checks", action="store_true", help="also measure `graphprune prune` with its default "
                        "checks (the original, its oracle and the pruned model run in onnxruntime)")
    parser.add_argument("--workdir", help="where to write the model (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="graphprune-mem-", dir=args.workdir) as tmp:
        folder = Path(tmp)
        model, weights = write_model(folder, args.width, args.layers)
        print(f"model: {args.layers} x Gemm {args.width}x{args.width}, weights {weights / 1e9:.2f} GB "
              f"({'above' if weights > 2**31 else 'below'} the 2 GB protobuf limit), external data")
        rows = [("python + imports", IMPORTS), ("load", LOAD.format(model=str(model))),
                ("I/O floor: onnx.load + onnx.save", FLOOR.format(model=str(model), out=str(folder / "floor.onnx"))),
                (f"load + prune {args.ratio:g} + save", PIPELINE.format(model=str(model), out=str(folder / "out.onnx"),
                                                                         ratio=args.ratio))]
        if args.cli:
            rows.append(("graphprune prune --no-validate", CLI.format(argv=["prune", str(model), "-o",
                                                                             str(folder / "cli.onnx"), "--ratio",
                                                                             str(args.ratio), "--no-validate"])))
        if args.checks:
            rows.append(("graphprune prune (default checks)", CLI.format(argv=["prune", str(model), "-o",
                                                                                str(folder / "checked.onnx"),
                                                                                "--ratio", str(args.ratio)])))
        print(f"{'run':<32} {'peak RSS':>10} {'x weights':>10} {'seconds':>8}")
        for label, command in rows:
            rss, seconds = peak_rss(command)
            print(f"{label:<32} {rss / 1e9:>8.2f} GB {rss / weights:>10.2f} {seconds:>8.1f}")
        out = folder / "out.onnx"
        skeleton = onnx.load(str(out), load_external_data=False)
        data = folder / "out.onnx.data"
        stored = sum(int(e.value) for t in skeleton.graph.initializer for e in t.external_data if e.key == "length")
        print(f"output: {out.stat().st_size:,} bytes + {data.stat().st_size / 1e9:.2f} GB in {data.name} "
              f"({stored / 1e9:.2f} GB of tensors); first weight {list(skeleton.graph.initializer[0].dims)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
