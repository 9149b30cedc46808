"""benchmarks/bench_graph_view.py: both libraries remove every Relu correctly and one small run gives the table."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_graph_view as bgv  # noqa: E402

ARGV = ["--resnet-size", "small", "--layers", "2", "--width", "32", "--runs", "2"]
#: the files bench_graph_view.write_models writes: the zoo ResNet-50 and bench_memory's Gemm chain
MODELS = {"resnet50": "resnet50.onnx", "gemm-chain": "big.onnx"}


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim], dtype=np.float32)
            for i in model.graph.input}


def _relu_as_identity(model: onnx.ModelProto) -> onnx.ModelProto:
    """The reference of the edit, made without either library: every Relu becomes an Identity."""
    reference = onnx.ModelProto()
    reference.CopyFrom(model)
    for node in reference.graph.node:
        if node.op_type == "Relu":
            node.op_type = "Identity"
    return reference


def _table_rows(out: str) -> list[list[str]]:
    lines = [line for line in out.splitlines() if line.startswith("|")]
    assert lines[0].startswith("| model | weights | library | load s | graph view s | edit s | export s | save s |")
    assert set(lines[1]) <= set("|-:")
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_both_libraries_remove_every_relu_as_the_reference_does(tmp_path, capsys):
    assert importlib.util.find_spec("onnx_graphsurgeon") is not None, (
        "onnx-graphsurgeon is not installed: pip install '.[bench]' (the test extra includes it)")
    assert bgv.main([*ARGV, "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    originals = {key: onnx.load(str(tmp_path / name)) for key, name in MODELS.items()}
    relus = {key: sum(n.op_type == "Relu" for n in model.graph.node) for key, model in originals.items()}
    assert relus["gemm-chain"] == 2 and relus["resnet50"] > 10  # one Relu per Gemm layer; ResNet has many
    assert f"ResNet-50 (small): Relu nodes removed: onnx-graphsurgeon {relus['resnet50']}, onnx-ir " \
           f"{relus['resnet50']}" in out
    assert "2 x Gemm 32x32: Relu nodes removed: onnx-graphsurgeon 2, onnx-ir 2" in out
    for key, original in originals.items():
        feeds = _feeds(original)
        expected, unedited = _run(_relu_as_identity(original), feeds), _run(original, feeds)
        assert not all(np.allclose(e, u) for e, u in zip(expected, unedited))  # the edit changes the outputs
        for library in bgv.LIBRARIES:
            edited = onnx.load(str(bgv.output_path(tmp_path, library, key)))
            assert [n.op_type for n in edited.graph.node if n.op_type == "Relu"] == []
            assert len(edited.graph.node) == len(original.graph.node) - relus[key]
            for got, want in zip(_run(edited, feeds), expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * float(np.abs(want).max()))
    weights = {key: sum(onnx.numpy_helper.to_array(t, str(tmp_path)).nbytes for t in model.graph.initializer)
               for key, model in originals.items()}
    assert weights["gemm-chain"] == 2 * (32 * 32 + 32) * 4  # two float32 layers: a 32x32 weight and a bias
    _check_table(out, tmp_path, weights)


def _check_table(out: str, tmp_path: Path, weights: dict[str, int]) -> None:
    rows = _table_rows(out)
    assert [(r[0], r[2]) for r in rows] == [("ResNet-50 (small), 2 runs", "onnx-graphsurgeon"),
                                            ("ResNet-50 (small), 2 runs", "onnx-ir"),
                                            ("2 x Gemm 32x32, 1 run", "onnx-graphsurgeon"),
                                            ("2 x Gemm 32x32, 1 run", "onnx-ir")]
    assert [r[1] for r in rows] == [f"{weights['resnet50'] / 1e6:,.1f} MB (inline)"] * 2 + \
        [f"{weights['gemm-chain'] / 1e6:,.1f} MB (external data)"] * 2
    for row, key in zip(rows, ["resnet50"] * 2 + ["gemm-chain"] * 2):
        phases = [float(cell) for cell in row[3:8]]
        assert all(0 <= s < 60 for s in phases) and abs(sum(phases) - float(row[8])) <= 0.03
        imports, peak = (float(cell.removesuffix(" MB").replace(",", "")) for cell in row[9:11])
        assert 10 < imports <= peak < 2000  # an interpreter with onnx imported holds tens of MB
        # peak RSS over the weights; the table rounds the peak to 1 MB and the ratio to 0.01
        assert abs(float(row[11]) - peak * 1e6 / weights[key]) <= 0.5e6 / weights[key] + 0.01
    assert out.rstrip().endswith(f"`python benchmarks/bench_graph_view.py {' '.join(ARGV)} --workdir {tmp_path}`")
