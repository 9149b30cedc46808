"""--repair: names, aliases and defaults; every repair keeps the model valid and exact against its oracle;
plan + apply (with the same calibration data) writes the bytes prune writes."""
from __future__ import annotations

from dataclasses import replace

import json

import numpy as np
import pytest
from onnx import helper

from graphprune.api import apply, plan, prune
from graphprune.cli import main
from graphprune.errors import DataError, UsageError
from graphprune.pipeline.options import Options
from graphprune.vocabulary import ALL_REPAIRS, DEFAULT_REPAIR, parse_repair
from tests.helpers.repair import feeds, make_model


def test_repair_names_resolve_in_running_order():
    assert parse_repair("statistics,mean") == ("mean", "statistics")
    assert parse_repair("all") == ALL_REPAIRS == ("mean", "sequential", "statistics")
    assert parse_repair("refit,mean") == ("refit",), "refit includes the means"
    assert parse_repair("none") == () and parse_repair(()) == ()
    with pytest.raises(ValueError, match="unknown repair bogus"):
        parse_repair("mean,bogus")


def test_options_aliases_and_defaults():
    data = [{"x": np.zeros((1, 2), np.float32)}]
    assert Options().repair == ()
    assert Options(calib=data).repair == DEFAULT_REPAIR
    assert Options(calib=data, compensate=True).repair == ("mean",)
    assert Options(calib=data, refit=True).repair == ("refit",)
    assert Options(calib=data, compensate=False).repair == ()
    assert Options(importance="fluctuation", calib=data, compensate=None).repair == DEFAULT_REPAIR
    chosen = Options(calib=data, repair="sequential")
    assert chosen.repair == ("sequential",) and replace(chosen, ratio=0.5).repair == ("sequential",)
    assert (chosen.compensate, Options(calib=data, repair="refit,statistics").refit) == (False, True)
    assert Options(calib=data, repair="all", compensate=True).repair == ("mean", "sequential", "statistics")
    with pytest.raises(UsageError, match="--repair sequential needs calibration data"):
        Options(repair="sequential")
    with pytest.raises(UsageError, match="not both"):
        Options(calib=data, repair="mean", compensate=False)
    with pytest.raises(UsageError, match="unknown repair"):
        Options(calib=data, repair="fast")


def _small_net(seed: int = 0):
    """x [1,3,8,8] -> conv (3->8, 3x3) -> relu -> conv (8->8, 1x1) -> relu -> conv (8->4) -> y."""
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["h1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
             helper.make_node("Conv", ["a1", "w2"], ["h2"], name="conv2"),
             helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
             helper.make_node("Conv", ["a2", "w3", "b3"], ["y"], name="conv3")]
    inits = {"w1": rng.standard_normal((8, 3, 3, 3)) / 4, "b1": rng.standard_normal(8) / 4,
             "w2": rng.standard_normal((8, 8, 1, 1)) / 3, "w3": rng.standard_normal((4, 8, 1, 1)) / 3,
             "b3": rng.standard_normal(4)}
    return make_model(nodes, inits, [1, 3, 8, 8], [1, 4, 8, 8])


@pytest.mark.parametrize("repair", ["mean", "refit", "sequential", "statistics", "all"])
def test_every_repair_is_valid_and_exact_against_its_oracle(repair):
    """The repairs that minimize an error (mean, refit, sequential) lower it on held-out samples;
    statistics correction matches moments, which need not (here it does not: cosine 0.907 < 0.915)."""
    model = _small_net()
    calib, evaluation = feeds(model, 6, seed=1, mean=0.3), feeds(model, 4, seed=2, mean=0.3)
    plain = prune(model, ratio=0.5, importance="l2", calib=calib, repair="none", data=evaluation)
    repaired = prune(model, ratio=0.5, importance="l2", calib=calib, repair=repair, data=evaluation)
    assert repaired.oracle.passed and repaired.repair.methods == parse_repair(repair)
    assert repaired.layers == plain.layers and repaired.params_after < plain.params_before  # same channels kept
    if repair != "statistics":
        assert repaired.drift.outputs[0].cosine > plain.drift.outputs[0].cosine


def test_plan_then_apply_writes_the_bytes_prune_writes(tmp_path):
    model = _small_net()
    calib = feeds(model, 5, seed=1, mean=0.3)
    pruned = prune(model, ratio=0.5, importance="fluctuation", calib=calib, repair="all", validate=False)
    planned = plan(model, ratio=0.5, importance="fluctuation", calib=calib, repair="all")
    record = planned.plan.options["repair"]
    assert record["methods"] == list(ALL_REPAIRS)
    assert (record["calibration"]["samples"], record["calibration"]["eval_split"]) == (4, 0.25)  # one of 5 held out
    path = planned.plan.save(tmp_path / "plan.json")
    applied = apply(model, path, calib=calib, validate=False)
    assert applied.model.SerializeToString() == pruned.model.SerializeToString()
    assert applied.repair.methods == pruned.repair.methods == ALL_REPAIRS
    assert applied.repair.sequential.refitted == pruned.repair.sequential.refitted != []
    with pytest.raises(UsageError, match="give it with --calib"):
        apply(model, path)
    with pytest.raises(DataError, match="not the data the plan was made with"):
        apply(model, path, calib=feeds(model, 5, seed=9, mean=0.3))


def test_held_out_samples_never_reach_the_repair(tmp_path):
    """The plan hashes the calibration samples only: changing a held-out sample changes neither the
    plan's record nor what apply writes; changing a calibration sample is refused."""
    from graphprune.validation.split import held_out_indices

    model = _small_net()
    calib = feeds(model, 8, seed=1, mean=0.3)
    held = sorted(held_out_indices(8, 0.25, 0))
    assert len(held) == 2
    planned = plan(model, ratio=0.5, importance="l2", calib=calib, repair="sequential")
    path = planned.plan.save(tmp_path / "plan.json")
    other_held = [dict(f) for f in calib]
    other_calib = [dict(f) for f in calib]
    for i in held:
        other_held[i] = {"x": calib[i]["x"] + 1.0}
    first_calibration = min(set(range(8)) - set(held))
    other_calib[first_calibration] = {"x": calib[first_calibration]["x"] + 1.0}
    again = plan(model, ratio=0.5, importance="l2", calib=other_held, repair="sequential")
    assert again.plan.options["repair"] == planned.plan.options["repair"]
    reference = prune(model, ratio=0.5, importance="l2", calib=calib, repair="sequential", validate=False)
    applied = apply(model, path, calib=other_held, validate=False)
    assert applied.model.SerializeToString() == reference.model.SerializeToString()
    with pytest.raises(DataError, match="not the data the plan was made with"):
        apply(model, path, calib=other_calib, validate=False)


def test_cli_prune_and_apply_with_repair(tmp_path, capsys):
    model = _small_net()
    source, calib = tmp_path / "net.onnx", tmp_path / "calib.npz"
    source.write_bytes(model.SerializeToString())
    np.savez(calib, x=np.stack([f["x"] for f in feeds(model, 4, seed=1, mean=0.3)]))
    out, planned, applied = tmp_path / "slim.onnx", tmp_path / "plan.json", tmp_path / "applied.onnx"
    assert main(["prune", str(source), "-o", str(out), "--ratio", "0.5", "--calib", str(calib),
                 "--repair", "sequential,statistics"]) == 0
    printed = capsys.readouterr().out
    assert "sequential reconstruction: 2 consumers re-fitted" in printed and "statistics correction" in printed
    assert main(["plan", str(source), "-o", str(planned), "--ratio", "0.5", "--calib", str(calib),
                 "--repair", "sequential,statistics"]) == 0
    assert main(["apply", str(source), str(planned), "-o", str(applied), "--calib", str(calib)]) == 0
    assert applied.read_bytes() == out.read_bytes()
    assert main(["apply", str(source), str(planned), "-o", str(tmp_path / "x.onnx")]) == 2
    assert "needs the calibration data" in capsys.readouterr().err
    assert not (tmp_path / "x.onnx").exists()


def test_repairs_read_more_samples_when_they_are_small():
    from graphprune.compensation.repair import REPAIR_SAMPLES, counted

    small = [{"x": np.zeros(8, np.float32)} for _ in range(200)]
    big = [{"x": np.zeros(1 << 19, np.float32)} for _ in range(200)]  # 2 MiB each
    for given, expected in ((small, 200), (big, REPAIR_SAMPLES)):
        stream, seen = counted(given)
        assert len(list(stream())) == expected == seen["count"]


def test_the_default_repair_does_not_report_a_mean_compensation_that_had_nothing_left(tmp_path, capsys):
    # mean,sequential: sequential re-fits both consumers, so the means correct none; the summary
    # says what ran (no "compensation: 0 consumer nodes corrected" line)
    model = _small_net()
    source, calib = tmp_path / "net.onnx", tmp_path / "calib.npz"
    source.write_bytes(model.SerializeToString())
    np.savez(calib, x=np.stack([f["x"] for f in feeds(model, 4, seed=1, mean=0.3)]))
    assert main(["prune", str(source), "-o", str(tmp_path / "slim.onnx"), "--ratio", "0.5", "--calib", str(calib),
                 "--json"]) == 0
    done = json.loads(capsys.readouterr().out)["repair"]
    assert done["methods"] == ["mean", "sequential"] and done["compensation"]["compensated"] == []
    assert main(["prune", str(source), "-o", str(tmp_path / "slim2.onnx"), "--ratio", "0.5", "--calib", str(calib)]) == 0
    printed = capsys.readouterr().out
    assert "sequential reconstruction: 2 consumers re-fitted" in printed and "compensation:" not in printed
