"""``graphprune plan | apply | prune | sensitivity``: options in --help, outputs, one-line errors, exit codes."""
from __future__ import annotations

import json

import onnx
import pytest

from graphprune.cli import build_parser, main
from graphprune.errors import EXIT_BAD_MODEL, EXIT_OK, EXIT_USAGE
from models.zoo import build
from tests.helpers.paths import ROOT
from tests.helpers.planning import feed_list, save_npz

DEMO = str(ROOT / "models" / "demo.onnx")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    return save_npz(tmp_path_factory.mktemp("calib") / "calib.npz", feed_list(onnx.load(DEMO), 6, seed=1))


NEW_OPTIONS = {
    "plan": ["--importance", "--aggregate", "--calib", "--calib-samples", "--ratio", "--global", "--normalize",
             "--round-to", "--min-channels", "--max-ratio", "--exclude", "--config", "--target-macs",
             "--target-params", "--target-latency", "--compensate", "--no-compensate", "--refit", "--export-masks"],
    "prune": ["--importance", "--calib", "--global", "--round-to", "--target-macs", "--export-masks", "--config"],
    "apply": ["--export-masks", "--no-validate"],
    "sensitivity": ["--ratios", "--importance", "--calib", "--calib-samples", "--report"],
}


@pytest.mark.parametrize("command", sorted(NEW_OPTIONS))
def test_every_option_is_in_help_with_examples(command):
    parser = build_parser()
    sub = next(a for a in parser._subparsers._actions if a.choices)  # noqa: SLF001 - argparse internals
    text = sub.choices[command].format_help()
    for option in NEW_OPTIONS[command]:
        assert option in text, f"{command} --help lacks {option}"
    assert f"graphprune {command} model.onnx" in text and "examples:" in text


@pytest.mark.parametrize("argv,needle", [
    (["plan", DEMO, "-o", "p.json", "--ratio", "1.2"], "--ratio"),
    (["plan", DEMO, "-o", "p.json", "--round-to", "0"], "--round-to"),
    (["plan", DEMO, "-o", "p.json", "--target-macs", "0"], "--target-macs"),
    (["plan", DEMO, "-o", "p.json", "--target-macs", "0.5", "--target-params", "0.5"], "not allowed with"),
    (["plan", DEMO, "-o", "p.json", "--importance", "taylor"], "--importance"),
    (["plan", DEMO, "-o", "p.json", "--importance", "fluctuation"], "--calib"),
    (["plan", DEMO, "-o", "p.json", "--compensate"], "--calib"),
    (["plan", DEMO, "-o", "p.json", "--refit"], "--refit needs calibration data"),
    (["plan", DEMO, "-o", "p.json", "--ratio", "0.3", "--target-macs", "0.5"], "either --ratio or a --target"),
    (["prune", DEMO, "-o", "s.onnx", "--importance", "activation"], "--calib"),
    (["sensitivity", DEMO, "--ratios", "0.2,x"], "--ratios"),
    (["sensitivity", DEMO, "--importance", "fluctuation"], "--calib"),
])
def test_bad_values_are_one_line_usage_errors(capsys, tmp_path, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(capsys, *argv)
    assert code == EXIT_USAGE
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert not (tmp_path / "p.json").exists()


def test_plan_then_apply(capsys, tmp_path, calib):
    plan_path, masks, out = tmp_path / "plan.json", tmp_path / "masks.json", tmp_path / "slim.onnx"
    code, text, err = _run(capsys, "plan", DEMO, "-o", plan_path, "--target-macs", "0.5", "--importance",
                           "fluctuation", "--calib", calib, "--repair", "mean", "--export-masks", masks)
    assert code == EXIT_OK, err
    assert "predicted MACs: 9,126,082 -> " in text and "compensation: calibration means" in text
    data = json.loads(plan_path.read_text())
    assert data["options"]["importance"] == "fluctuation" and data["compensation"]["spaces"]
    assert json.loads(masks.read_text())
    code, text, err = _run(capsys, "apply", DEMO, plan_path, "-o", out, "--json")
    assert code == EXIT_OK, err
    report = json.loads(text)
    assert report["oracle"]["passed"] and report["compensation"]["compensated"]
    assert report["macs"]["after"] == data["predicted"]["macs"]["after"]
    assert abs(report["macs"]["after"] / report["macs"]["before"] - 0.5) <= 0.01
    assert onnx.load(str(out)).graph.output[0].name == "logits"


def test_apply_refuses_a_plan_for_another_model(capsys, tmp_path):
    plan_path = tmp_path / "plan.json"
    assert _run(capsys, "plan", DEMO, "-o", plan_path)[0] == EXIT_OK
    other = tmp_path / "other.onnx"
    onnx.save(build("resnet18"), str(other))
    code, out, err = _run(capsys, "apply", other, plan_path, "-o", tmp_path / "x.onnx")
    assert code == EXIT_BAD_MODEL and out == ""
    assert len(err.strip().splitlines()) == 1 and "made for a different model" in err
    assert not (tmp_path / "x.onnx").exists()
    plan_path.write_text("{not json")
    code, _, err = _run(capsys, "apply", DEMO, plan_path, "-o", tmp_path / "x.onnx")
    assert code == EXIT_BAD_MODEL and "cannot read the plan" in err


def test_prune_with_targets_rounding_and_masks(capsys, tmp_path):
    out, masks = tmp_path / "slim.onnx", tmp_path / "m.json"
    code, text, err = _run(capsys, "prune", DEMO, "-o", out, "--target-params", "0.6", "--global", "--round-to", "2",
                           "--export-masks", masks)
    assert code == EXIT_OK, err
    assert "target parameters 0.6: global ranking" in text and f"wrote {out} and {masks}" in text
    kept = json.loads(masks.read_text())
    assert any("BatchNormalization" in name for name in kept)
    slim = {t.name: list(t.dims) for t in onnx.load(str(out)).graph.initializer}
    for name, axes in kept.items():
        if name in slim:
            assert all(slim[name][int(a)] == len(v) for a, v in axes.items())


def test_sensitivity_table_json_and_report(capsys, tmp_path, calib):
    code, text, err = _run(capsys, "sensitivity", DEMO, "--ratios", "0.5,0.25", "--calib", calib,
                           "--calib-samples", "2", "--report", tmp_path / "s.html")
    assert code == EXIT_OK, err
    lines = text.splitlines()
    assert "2 samples of" in lines[0] and lines[1].split()[:4] == ["group", "slots", "@0.25", "@0.5"]
    assert 'id="chart-sensitivity"' in (tmp_path / "s.html").read_text()
    code, text, _ = _run(capsys, "sensitivity", DEMO, "--json", "--samples", "1", "--ratios", "0.5")
    data = json.loads(text)
    assert data["ratios"] == [0.5] and data["samples"] == 1 and all(len(g["drift"]) == 1 for g in data["groups"])
