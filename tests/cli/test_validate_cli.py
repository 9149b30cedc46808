"""``graphprune validate``: exit codes, the table, --json, --report, one-line errors."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from graphprune.cli import main
from tests.helpers.models import save, small_cnn, two_outputs


@pytest.fixture
def models(tmp_path):
    mask = np.zeros((2, 3), np.float32)
    mask[0, 1] = 0.5
    return {"ref": save(two_outputs(), tmp_path / "ref.onnx"), "same": save(two_outputs(), tmp_path / "same.onnx"),
            "wrong": save(two_outputs(mask), tmp_path / "wrong.onnx")}


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_identical_copy_exits_0_with_a_passing_table(models, capsys):
    code, out, err = _run(capsys, "validate", models["ref"], models["same"], "--samples", "3")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("validation PASSED: 2 output(s), 3 sample(s)")
    assert sorted(ln.split()[0] for ln in lines[3:5]) == ["out", "relu"]
    assert all(ln.rstrip().endswith("ok") for ln in lines[3:5])


def test_wrong_model_exits_1_and_names_the_worst_output(models, capsys):
    code, out, err = _run(capsys, "validate", models["ref"], models["wrong"])
    assert code == 1
    assert out.splitlines()[3].startswith("out <- worst")
    assert err.startswith("graphprune: error: validation failed: output 'out' max_abs 0.5 is ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_loose_tolerance_accepts_the_difference(models, capsys):
    code, _, _ = _run(capsys, "validate", models["ref"], models["wrong"], "--atol", "0.6")
    assert code == 0


def test_json_output(models, capsys):
    code, out, _ = _run(capsys, "validate", models["ref"], models["wrong"], "--json", "--seed", "3")
    data = json.loads(out)
    assert code == 1 and data["passed"] is False and data["worst"] == "out"
    assert data["data"] == "seeded random inputs (seed 3)"
    assert {o["name"]: o["max_abs"] for o in data["outputs"]} == {"relu": 0.0, "out": 0.5}


@pytest.mark.parametrize("suffix", ["json", "html"])
def test_report_files(models, capsys, tmp_path, suffix):
    path = tmp_path / f"report.{suffix}"
    code, _, _ = _run(capsys, "validate", models["ref"], models["wrong"], "--report", str(path))
    assert code == 1                                           # the report is written before failing
    text = path.read_text()
    if suffix == "json":
        assert json.loads(text)["validation"]["worst"] == "out"
    else:
        assert "FAILED" in text and "<svg" not in text.split("Validation")[0]


def test_data_file_and_input_shape(tmp_path, capsys):
    m = save(small_cnn(), tmp_path / "cnn.onnx")
    np.save(tmp_path / "x.npy", np.zeros((3, 2, 3, 16, 16), np.float32))
    code, out, _ = _run(capsys, "validate", m, m, "--data", str(tmp_path / "x.npy"))
    assert code == 0 and "3 sample(s) of " in out and "2x10" in out
    code, out, _ = _run(capsys, "validate", m, m, "--input-shape", "x:4x3x16x16", "--samples", "1")
    assert code == 0 and "4x10" in out


def test_image_folder_options_reach_the_loader(tmp_path, capsys):
    image = pytest.importorskip("PIL.Image", reason="pillow (test extra) writes the test images")
    from onnx import TensorProto, helper

    from tests.helpers.models import model

    (tmp_path / "imgs").mkdir()
    for i in range(3):
        image.new("RGB", (6, 4), (255, 0, 0)).save(tmp_path / "imgs" / f"{i}.png")
    dims = [1, 3, 4, 6]
    m = save(model([helper.make_node("Identity", ["x"], ["y"])], [("x", TensorProto.FLOAT, dims)],
                   [("y", TensorProto.FLOAT, dims)]), tmp_path / "m.onnx")
    code, out, _ = _run(capsys, "validate", m, m, "--data", str(tmp_path / "imgs"), "--mean", "0.5,0.5,0.5",
                        "--std", "0.5", "--channel-order", "bgr", "--json")
    data = json.loads(out)
    assert code == 0 and data["samples"] == 3 and data["data"] == str(tmp_path / "imgs")
    code, _, err = _run(capsys, "validate", m, m, "--data", str(tmp_path / "imgs"), "--mean", "0.5,0.5")
    assert code == 2 and "mean has 2 values; the input has 3 channel(s)" in err


@pytest.mark.parametrize("argv,code,message", [
    (["--input-shape", "y:1x3"], 2, "input shape given for 'y', but the model's inputs are ['x']"),
    (["--input-shape", "x:1x3"], 2, "input 'x' axis 0 is fixed to 2 in the model; the given shape 1x3 says 1"),
    (["--input-shape", "x"], 2, "expected NAME:DIMS"),
    (["--mean", "0.5"], 2, "--mean/--std/--size apply to an image folder given with --data"),
    (["--mean", "a,b"], 2, "argument --mean: expected comma-separated numbers"),
    (["--size", "0"], 2, "argument --size: expected one or two positive integers"),
    (["--samples", "0"], 2, "samples must be at least 1"),
    (["--data", "missing.npz"], 3, "missing.npz: no such file or directory"),
    (["--report", "out.txt"], 2, "the file name must end in .json or .html"),
    (["--report", "no/such/dir/r.json"], 2, "directory no/such/dir does not exist"),
])
def test_bad_options_are_one_line_errors(models, capsys, argv, code, message):
    got, out, err = _run(capsys, "validate", models["ref"], models["same"], *argv)
    assert got == code
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_model_exits_3(models, capsys, tmp_path):
    code, _, err = _run(capsys, "validate", models["ref"], str(tmp_path / "nope.onnx"))
    assert code == 3 and "nope.onnx: no such file" in err


def test_folded_zoo_model_exits_0_and_a_corrupted_fold_exits_1(tmp_path, capsys):
    """The acceptance pair: the folded model matches its original; a wrong weight does not."""
    zoo = pytest.importorskip("models.zoo", reason="the reference zoo models/zoo.py is needed")
    fold = pytest.importorskip("graphprune.passes.fold", reason="graphprune.passes.fold (BN folding) is needed")
    original = zoo.build("resnet18")
    from graphprune.graph.model import from_proto

    folded = fold.fold(from_proto(original)).model
    assert not any(n.op_type == "BatchNormalization" for n in folded.graph.node)
    a, b = save(original, tmp_path / "a.onnx"), save(folded, tmp_path / "folded.onnx")
    code, out, _ = _run(capsys, "validate", a, b, "--samples", "2")
    assert code == 0 and out.startswith("validation PASSED")
    conv_weight = next(t for t in folded.graph.initializer if len(t.dims) == 4)
    array = onnx.numpy_helper.to_array(conv_weight).copy()
    array.flat[0] += 1.0                                     # one weight of the first conv, off by one
    conv_weight.CopyFrom(onnx.numpy_helper.from_array(array, conv_weight.name))
    wrong = save(folded, tmp_path / "wrong.onnx")
    code, out, err = _run(capsys, "validate", a, wrong, "--samples", "2")
    assert code == 1 and out.startswith("validation FAILED")
    assert err.startswith("graphprune: error: validation failed: output 'logits'")


def _classifier(tmp_path, name, weight):
    """scores = x @ weight, one [1, 2] sample at a time."""
    from onnx import TensorProto, helper

    from tests.helpers.models import model

    nodes = [helper.make_node("MatMul", ["x", "w"], ["scores"], name="fc")]
    m = model(nodes, [("x", TensorProto.FLOAT, [1, 2])], [("scores", TensorProto.FLOAT, [1, 2])],
              {"w": np.asarray(weight, np.float32)})
    return save(m, tmp_path / name)


def test_max_drift_gates_on_top1_of_the_data_instead_of_the_tolerances(tmp_path, capsys):
    reference = _classifier(tmp_path, "ref.onnx", np.eye(2))
    candidate = _classifier(tmp_path, "cand.onnx", np.diag([1.0, 3.0]))  # the second score tripled
    # four samples (stacked for a batch-1 input); only [1, 0.5] -> [1, 1.5] changes its class: top1 drift 0.25
    data = tmp_path / "held-out.npz"
    np.savez(data, x=np.array([[1, 0.5], [1, 0.2], [0.1, 1], [2, 0.1]], np.float32))
    code, out, err = _run(capsys, "validate", reference, candidate, "--data", str(data), "--max-drift", "0.25",
                          "--metric", "top1")
    assert code == 0 and err == ""
    assert "top-1 agreement 75.0%" in out
    assert out.splitlines()[-1] == f"drift budget: met: top1 drift 0.25 <= --max-drift 0.25 on 4 samples of {data}"
    code, out, err = _run(capsys, "validate", reference, candidate, "--data", str(data), "--max-drift", "0.2",
                          "--metric", "top1", "--json")
    gate = json.loads(out)["gate"]
    assert code == 1 and (gate["drift"], gate["passed"], gate["samples"]) == (0.25, False, 4)
    assert err == ("graphprune: error: drift budget: MISSED by 0.05 (1.25x the limit): top1 drift 0.25 > "
                   f"--max-drift 0.2 on 4 samples of {data}\n")
    # without --max-drift the element-wise tolerances decide: the same candidate fails
    assert _run(capsys, "validate", reference, candidate, "--data", str(data))[0] == 1
