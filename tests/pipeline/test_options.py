"""pipeline/options.py: every option is defined and validated once, in :class:`Options`."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphprune
from graphprune.errors import UsageError
from graphprune.pipeline import Options
from graphprune.planning.config import Override
from graphprune.planning.options import PlanOptions
from models.zoo import build


def test_unknown_keyword_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"unknown option\(s\): ratoi \(see graphprune.pipeline.Options\)"):
        Options.of(ratoi=0.3)
    with pytest.raises(TypeError, match=r"unknown option\(s\): speed, turbo"):
        Options.of(ratio=0.3, turbo=True, speed=2)
    model = build("demo")
    for call in (graphprune.prune, graphprune.plan, graphprune.inspect):
        with pytest.raises(TypeError, match="ratoi"):
            call(model, ratoi=0.3)
    assert Options.of(ratio=0.25) == Options(ratio=0.25)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_ratio_outside_zero_one_is_a_usage_error(bad):
    with pytest.raises(UsageError, match=r"--ratio must be in \[0, 1\)"):
        Options(ratio=bad)


@pytest.mark.parametrize("kwargs,message", [
    (dict(importance="fluctuation"), "--importance fluctuation is data-driven: give calibration data with --calib"),
    (dict(importance="activation"), "--importance activation is data-driven"),
    (dict(compensate=True), "--compensate needs calibration data: give it with --calib PATH"),
    (dict(refit=True), "--refit needs calibration data: give it with --calib PATH"),
    (dict(target_macs=0.5, target_params=0.5), "give one target, not 2"),
    (dict(target_latency=0.0), "--target-latency is the fraction of the original to keep"),
    (dict(round_to=0), "--round-to"),
    (dict(importance="taylor"), "importance"),
    (dict(normalize="z"), "--normalize must be one of"),
    (dict(overrides=("layer1*",)), "overrides must be Override objects"),
])
def test_usage_errors_name_the_option(kwargs, message):
    with pytest.raises(UsageError, match=message):
        Options(**kwargs)


def test_compensation_defaults_follow_the_criterion():
    feeds = [{"input": np.zeros((1, 3, 64, 64), np.float32)}]
    assert Options(importance="fluctuation", calib=feeds).compensate is True
    assert Options(importance="fluctuation", calib=feeds, compensate=False).compensate is False
    assert Options(importance="l2").compensate is False and not Options().needs_calibration
    assert Options(importance="l2", calib=feeds, refit=True).compensate is True   # a re-fit is a compensation
    assert Options(importance="l2", calib=feeds, compensate=True).needs_calibration


def test_plan_options_are_the_planner_fields_and_validated_there_too():
    options = Options(ratio=0.4, exclude=["/layer4*"], global_rank=True, round_to=8, seed=3, keep_bn=True)
    plan = options.plan_options
    assert isinstance(plan, PlanOptions) and options.exclude == ("/layer4*",)
    planner_fields = {f.name for f in dataclasses.fields(PlanOptions)}
    own_fields = {f.name for f in dataclasses.fields(Options)}
    assert not planner_fields & own_fields and options.plan is plan  # each option defined once
    assert {k: getattr(plan, k) for k in planner_fields} == {k: getattr(options, k) for k in planner_fields}
    assert (plan.ratio, plan.global_rank, plan.round_to, plan.seed) == (0.4, True, 8, 3) and options.keep_bn
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.ratio = 0.5
    with pytest.raises(AttributeError, match="no option 'rato'"):
        options.rato  # noqa: B018 - a typo reads as an error, not as None


def test_config_file_overrides_follow_the_given_ones(tmp_path):
    config = tmp_path / "o.toml"
    config.write_text('[[override]]\nnode = "/layer1*"\nratio = 0.125\n')
    given = Override("/stem*", exclude=True)
    options = Options(overrides=(given,), config=config)
    assert not hasattr(options, "config")  # merged into the planner's overrides, not kept
    assert [o.to_dict() for o in options.overrides] == [given.to_dict(), {"node": "/layer1*", "ratio": 0.125}]
