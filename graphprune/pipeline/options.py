"""One options value for every stage: what to remove, how to calibrate, how to check.

The Python API passes its keyword arguments straight to :class:`Options` (the CLI builds the
same keywords from its flags), so each option is defined and validated once, here; stages read
only the fields they need. ``plan_options`` is the planner's part, recorded in plan files.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

import math

from ..errors import UsageError
from ..planning.config import check_fraction, load_overrides
from ..planning.options import PlanOptions
from ..vocabulary import (ATTENTION_MODES, COVARIANCE_DRIVEN, DATA_DRIVEN, DEFAULT_CALIB_SAMPLES, DEFAULT_MAX_LENGTH,
                          DEFAULT_REPAIR, DRIFT_METRICS, EXECUTORS, OBJECTIVES, TEXT_SUFFIXES, parse_repair)

#: the planner's options: keywords of :class:`Options` that go to its ``plan`` part
PLAN_FIELDS = frozenset(f.name for f in fields(PlanOptions))
#: what calibration data changes when the user does not say otherwise: a data-driven criterion.
#: (The repairs' default with data, DEFAULT_REPAIR, is chosen by :func:`resolve_repair`.)
DEFAULTS_WITH_DATA = {"importance": "fluctuation"}


@dataclass(frozen=True, init=False)
class Options:
    """Every option of ``prune``/``plan``/``apply``/``sensitivity``; see the CLI help of each flag.

    ``plan`` holds what to remove (:class:`PlanOptions`: ratio, importance, targets, limits...);
    its fields read through: ``options.ratio`` is ``options.plan.ratio``. Construct with flat
    keywords (``Options(ratio=0.5, calib="data.npz")``); ``config`` (a file of per-node
    overrides) is merged into ``plan.overrides``.
    """

    plan: PlanOptions
    # calibration and repair
    calib: object = None
    #: None: all of the calibration samples (streamed)
    calib_samples: int | None = DEFAULT_CALIB_SAMPLES
    #: fraction of --calib held out for the final drift check (with --data, --data is held out instead);
    #: None: DEFAULT_EVAL_SPLIT when the calibration data has 2 samples or more, else nothing held out
    eval_split: float | None = None
    #: a tokenizer.json: ``calib`` is then a text file, one sentence per line
    tokenizer: object = None
    max_length: int = DEFAULT_MAX_LENGTH
    #: repairs by name (``"mean,statistics"``, ``"all"``, ``"none"`` or a sequence); None: the default
    #: combination with calibration data, none without. Resolved to a tuple of names in running order
    repair: object = None
    #: older spellings of ``repair`` (compensate=True is "mean", refit=True "refit", compensate=False
    #: "none"); once resolved they say whether the repair includes mean compensation / the re-fit
    compensate: bool | None = None
    refit: bool = False
    # preparation and analysis
    keep_bn: bool = False
    strict_initializer_inputs: bool = False
    #: which attention factors may be pruned: ``both`` (whole heads and head dims, each its own
    #: group, ``ratio`` applying to each), ``heads`` or ``dims``
    attention: str = "both"
    # the drift budget: a search (no ratio or target given) or a gate on the result
    max_drift: float | None = None
    metric: str = "cosine"
    #: what a budget search removes as much of as it can (None: MACs)
    objective: str | None = None
    #: True: search per-group ratios within max_drift (set when max_drift is given without a ratio or target)
    search: bool = False
    # the checks of the result
    validate: bool = True
    data: object = None
    samples: int | None = None
    #: {input name: shape}, or the ResolvedShapes a command found once for the model as given
    input_shapes: object = None
    image_options: dict | None = None
    # running
    progress: bool = False
    #: workers of candidate evaluations and calibration shards: local processes (None: one per CPU),
    #: or Ray actors with ``executor="ray"`` (None: one per CPU of the cluster)
    jobs: int | None = None
    #: who runs them: "local" (None), "ray", or an Executor instance (the caller owns it; ``jobs`` ignored)
    executor: object = None
    #: the Ray cluster of ``executor="ray"`` (None: the RAY_ADDRESS environment variable, else a local Ray)
    ray_address: str | None = None
    latency_threads: int = 1
    count_macs: bool = True
    label: str | None = None

    def __init__(self, plan: PlanOptions | None = None, config=None, **keywords):
        unknown = sorted(set(keywords) - PLAN_FIELDS - {f.name for f in fields(self)})
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)} (see graphprune.pipeline.Options)")
        if plan is None:
            keywords = _with_defaults(keywords)
        planned = {k: keywords.pop(k) for k in list(keywords) if k in PLAN_FIELDS}
        for name in ("exclude", "overrides"):
            if name in planned:
                planned[name] = tuple(planned[name])
        if plan is not None and planned:
            plan = replace(plan, **planned)
        plan = plan or PlanOptions(**planned)
        if config is not None:
            plan = replace(plan, overrides=tuple(plan.overrides) + load_overrides(config))
        object.__setattr__(self, "plan", plan)
        for f in fields(self):
            if f.name != "plan":
                object.__setattr__(self, f.name, keywords.get(f.name, f.default))
        if self.attention not in ATTENTION_MODES:
            raise UsageError(f"--attention must be one of {', '.join(ATTENTION_MODES)}, got {self.attention!r}")
        self._resolve_repair()
        self._check_budget()
        self._check_executor()

    def _check_executor(self) -> None:
        from ..execution.executor import Executor

        if isinstance(self.executor, Executor):
            return
        if self.executor is not None and self.executor not in EXECUTORS:
            raise UsageError(f"--executor must be one of {', '.join(EXECUTORS)} (or an Executor instance), "
                             f"got {self.executor!r}")
        if self.ray_address is not None and self.executor != "ray":
            raise UsageError("--ray-address names the cluster of --executor ray: add --executor ray")
        if self.executor == "ray":
            from ..execution.ray_executor import require_ray

            require_ray()

    def _check_budget(self) -> None:
        if self.metric not in DRIFT_METRICS:
            raise UsageError(f"--metric must be one of {', '.join(DRIFT_METRICS)}, got {self.metric!r}")
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise UsageError(f"--objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if self.eval_split is not None:
            object.__setattr__(self, "eval_split", check_fraction("--eval-split", self.eval_split))
        if self.jobs is not None and (isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1):
            raise UsageError(f"--jobs must be a positive integer, got {self.jobs!r}")
        if self.max_drift is None:
            if self.search:
                raise UsageError("a budget search needs --max-drift D")
            if self.objective is not None:
                raise UsageError("--objective applies to a budget search: give --max-drift D (without --ratio)")
            return
        if isinstance(self.max_drift, bool) or not isinstance(self.max_drift, (int, float)) \
                or not math.isfinite(self.max_drift) or self.max_drift <= 0:
            raise UsageError(f"--max-drift must be a positive number, got {self.max_drift!r}")
        if self.search and self.plan.global_rank:
            raise UsageError("--global ranks slots for a --ratio or --target-*; a --max-drift search chooses every "
                             "group's share itself: drop --global, or give a ratio to gate")
        if self.search and self.calib is None:
            raise UsageError("--max-drift without --ratio or a --target-* searches on calibration data: give it "
                             "with --calib PATH (a part of it, --eval-split, is held out for the final check)")
        if self.calib is None and self.data is None:
            raise UsageError("--max-drift is checked on your data: give --calib PATH (a part is held out) or "
                             "--data PATH")
        if not self.validate:
            raise UsageError("--max-drift checks the result: drop --no-validate")
        if self.objective is not None and not self.search:
            raise UsageError("--objective applies to a budget search: drop --ratio/--target-* or --objective")

    def _resolve_repair(self) -> None:
        methods = resolve_repair(self.repair, self.compensate, self.refit, self.calib, self.plan.importance)
        object.__setattr__(self, "repair", methods)
        # the older spellings now say what the repair does (``replace(options, ...)`` resolves the same)
        object.__setattr__(self, "compensate", bool({"mean", "refit"} & set(methods)))
        object.__setattr__(self, "refit", "refit" in methods)
        check_calibration(self.plan.importance, self.calib, methods)
        check_text_calibration(self.calib, self.tokenizer, self.max_length)

    def __getattr__(self, name: str):
        if name in PLAN_FIELDS:
            return getattr(self.plan, name)
        raise AttributeError(f"{type(self).__name__!r} has no option {name!r}")

    @classmethod
    def of(cls, **keywords) -> "Options":
        """Options from API keywords (an unknown keyword is a TypeError naming it)."""
        return cls(**keywords)

    @property
    def plan_options(self) -> PlanOptions:
        return self.plan

    @property
    def mean_repair(self) -> str | None:
        """``"refit"`` or ``"mean"`` when the decision carries compensation data, else None."""
        return next((m for m in ("refit", "mean") if m in self.repair), None)

    @property
    def needs_covariance(self) -> bool:
        """Whether calibration keeps the activations' Gram matrices (the re-fit, a covariance criterion)."""
        return self.mean_repair == "refit" or self.plan.importance in COVARIANCE_DRIVEN

    @property
    def needs_calibration(self) -> bool:
        """Whether scoring or the decision's repair data (mean, refit) needs calibration statistics."""
        return self.plan.importance in DATA_DRIVEN or self.mean_repair is not None


def _with_defaults(keywords: dict) -> dict:
    """Fresh keywords with what calibration data implies, and whether a budget search is asked for."""
    out = dict(keywords)
    if out.get("calib") is not None:
        for key, value in DEFAULTS_WITH_DATA.items():
            if out.get(key) is None:
                out[key] = value
    if out.get("importance") is None:
        out.pop("importance", None)
    targets = any(out.get(f"target_{k}") is not None for k in OBJECTIVES)
    if "search" not in out:
        out["search"] = out.get("max_drift") is not None and out.get("ratio") is None and not targets
    if out.get("ratio") is None:
        out.pop("ratio", None)
        if out["search"]:
            out["ratio"] = 0.0
    return out


def resolve_repair(repair, compensate: bool | None, refit: bool, calib, importance: str) -> tuple[str, ...]:
    """The repairs to run, in running order, from ``repair`` or its older spellings.

    Without either: the default combination when there is calibration data (mean compensation alone
    for a data-driven criterion given no data, which then fails with a usage error), none otherwise.
    Older spellings given with ``repair`` must agree with it.
    """
    if repair is not None:
        try:
            methods = parse_repair(repair)
        except ValueError as exc:
            raise UsageError(f"--repair: {exc}") from None
        means = bool({"mean", "refit"} & set(methods))
        if (compensate is not None and compensate != means) or (refit and "refit" not in methods):
            raise UsageError("give --repair or --compensate/--no-compensate/--refit, not both")
        return methods
    if refit:
        if compensate is False:
            raise UsageError("--refit compensates by construction; drop --no-compensate")
        return ("refit",)
    if compensate is not None:
        return ("mean",) if compensate else ()
    if calib is not None:
        return DEFAULT_REPAIR
    return ("mean",) if importance in DATA_DRIVEN else ()


def check_calibration(importance: str, calib, repair) -> None:
    """A usage error (naming --calib) when data-driven scoring or a repair has no data."""
    if calib is not None:
        return
    if importance in DATA_DRIVEN:
        raise UsageError(f"--importance {importance} is data-driven: give calibration data with "
                         "--calib PATH (.npz, .npy or a folder of images)")
    if repair:
        flag = "--refit" if "refit" in repair else "--compensate" if repair == ("mean",) else f"--repair {','.join(repair)}"
        raise UsageError(f"{flag} needs calibration data: give it with --calib PATH")


def check_text_calibration(calib, tokenizer, max_length: int) -> None:
    """Usage errors of text calibration data: a text file needs a tokenizer (and the ``tokenizers``
    package), a tokenizer needs a text file."""
    from pathlib import Path

    is_path = isinstance(calib, (str, Path))
    if tokenizer is None:
        if is_path and Path(calib).suffix.lower() in TEXT_SUFFIXES:
            raise UsageError(f"--calib {calib} is a text file: give the tokenizer that reads it with "
                             "--tokenizer tokenizer.json")
        return
    if not is_path or Path(calib).is_dir() or Path(calib).suffix.lower() in (".npz", ".npy"):
        raise UsageError("--tokenizer reads a text file of sentences given with --calib (one per line); "
                         f"--calib is {calib if is_path else type(calib).__name__}")
    if not isinstance(max_length, int) or max_length < 2:
        raise UsageError(f"--max-length must be at least 2 (room for the special tokens), got {max_length}")
    from ..calibration.text import require_tokenizers

    require_tokenizers()
