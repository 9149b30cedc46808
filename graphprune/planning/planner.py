"""The planner: from slot scores to the slots removed, by ratio or by target.

Every mode reduces to *how many* slots each group loses; which ones is always the group's
lowest-scoring slots that leave every space at least one (:func:`select_count`).

* **local** (default): every group loses ``floor(t · slots)``.
* equal scores are ordered by L2 magnitude, then slot id (channels that are all zero on the
  calibration data go by their weights: a channel dead by its weights goes first).
* **global** (``global_rank``): scores are normalized per group (divided by the group's mean,
  max or sum, so groups of different scale compare) and the ``t`` fraction of all pooled
  slots with the lowest normalized scores go, wherever they are.
* per-group limits (``max_ratio``, ``min_channels``, ``round_to``) and overrides (a group's own
  ratio, exclusion) apply in every mode.
* **targets**: ``t`` is searched so that the predicted MACs or parameters (see
  :class:`~graphprune.planning.cost.CostModel`) land on ``target · original``: bisection on
  ``t``, then the groups whose counts differ between the two bracketing plans are stepped one
  slot at a time (least important first) and the plan closest to the target is kept. Latency
  targets are searched coarsely with measured onnxruntime latency (a few bisection steps, every
  step reported).
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..analysis.types import Analysis
from ..importance import MagnitudeImportance
from ..importance.threads import score_groups
from .config import first_match
from .cost import Cost, CostModel
from .options import PlanOptions
from .select import GroupLimits, excluded, lowest, ratio_count, select_count

log = logging.getLogger(__name__)

#: bisection steps of a MAC/parameter target search, and of a (coarse) latency search
TARGET_STEPS = 40
LATENCY_STEPS = 6
#: greedy single-slot moves after the bisection of a MAC/parameter target
FILL_STEPS = 8
#: ... which stop once the prediction is this close to the goal (relative)
FILL_TOLERANCE = 1e-3
#: criteria whose ties are broken by slot id alone (magnitude itself, and the random baseline)
TIES_BY_ID = frozenset({"l1", "l2", "random"})
#: the largest local ratio a search may try (a group always keeps a slot anyway)
MAX_T = 1.0 - 1e-9


@dataclass
class Decision:
    """Which slots go (group id -> sorted slot ids), which groups were left alone and why."""

    removed: dict
    skipped: dict = field(default_factory=dict)
    #: the searched (or given) fraction t: per-group ratio (local) or pooled fraction (global)
    t: float = 0.0
    predicted: Cost | None = None
    search: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    scores: dict = field(default_factory=dict)


def normalize_scores(scores: np.ndarray, how: str) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if how == "none" or scores.size == 0:
        return scores
    den = {"mean": scores.mean, "max": scores.max, "sum": scores.sum}[how]()
    return scores / den if den > 0 else scores


@dataclass
class _GroupState:
    group: object
    scores: np.ndarray
    order: np.ndarray
    limits: GroupLimits
    own_ratio: float | None
    normalized: np.ndarray = None
    #: memo: allowed count -> selected slots
    selected: dict = field(default_factory=dict)
    tiebreak: np.ndarray | None = None

    @property
    def cap(self) -> int:
        """The most slots this group may lose under its limits."""
        n = self.group.n_slots
        return self.limits.allowed(n, n)


class Planner:
    """Scores every prunable group once, then turns a fraction ``t`` into a decision."""

    def __init__(self, analysis: Analysis, scorer, options: PlanOptions, *, cost_model: CostModel | None = None,
                 reference: Cost | None = None):
        self.analysis = analysis
        self.options = options
        self.cost_model = cost_model
        self.reference = reference
        self.skipped: dict[int, str] = {}
        self.states: dict[int, _GroupState] = {}
        #: equal scores (channels dead on the calibration data, equal gammas...) go by L2 magnitude
        self.tiebreak = None if scorer.name in TIES_BY_ID else MagnitudeImportance(2)
        chosen = [(group, limits, override) for group in analysis.prunable_groups
                  for limits, override in [self._limits(group)] if limits is not None]
        scored = score_groups([group for group, _, _ in chosen], scorer, self.tiebreak, analysis.index)
        for (group, limits, override), (scores, tiebreak) in zip(chosen, scored):
            self._add_group(group, limits, override, scores, tiebreak, scorer)
        self.pool = [gid for gid, s in self.states.items() if s.own_ratio is None]
        self._global_order = self._pooled_order() if options.global_rank else None

    def _limits(self, group) -> tuple[GroupLimits | None, object]:
        """(the group's limits, its config override), or (None, None) when it is left alone (in
        ``skipped``, with the reason)."""
        opts = self.options
        hit = excluded(group, tuple(opts.exclude))
        if hit:
            self.skipped[group.id] = f"excluded by --exclude (node {hit})"
            return None, None
        override = first_match(opts.overrides, group.nodes)
        if override is not None and override.exclude:
            self.skipped[group.id] = f"excluded by config override {override.node!r}"
            return None, None
        pick = (lambda key, default: default if override is None or getattr(override, key) is None
                else getattr(override, key))
        return GroupLimits(pick("max_ratio", opts.max_ratio), pick("min_channels", opts.min_channels),
                           pick("round_to", opts.round_to)), override

    def _add_group(self, group, limits: GroupLimits, override, scores: np.ndarray, tiebreak, scorer) -> None:
        if scores.shape != (group.n_slots,) or not np.all(np.isfinite(scores)):
            raise _invalid_scores(scorer, group, self.analysis.index)
        self.states[group.id] = _GroupState(group, scores, lowest(scores, tiebreak), limits,
                                            None if override is None else override.ratio,
                                            normalize_scores(scores, self.options.normalize), tiebreak=tiebreak)

    def _pooled_order(self) -> list[tuple[int, int]]:
        keys, entries = [], []
        for gid in self.pool:
            st = self.states[gid]
            for rank, slot in enumerate(st.order):
                keys.append((st.normalized[slot], gid, rank))
                entries.append(gid)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        return [entries[i] for i in order]

    # ------------------------------------------------------------------ t -> counts -> slots
    def counts_at(self, t: float) -> dict[int, int]:
        counts = {gid: ratio_count(st.group.n_slots, st.own_ratio)
                  for gid, st in self.states.items() if st.own_ratio is not None}
        if self._global_order is not None:
            k = int(math.floor(t * len(self._global_order) + 1e-9))
            for gid in self.pool:
                counts[gid] = 0
            taken = 0
            for gid in self._global_order:  # slots a group may not lose are passed over, not counted
                if taken == k:
                    break
                if counts[gid] < self.states[gid].cap:
                    counts[gid] += 1
                    taken += 1
        else:
            for gid in self.pool:
                counts[gid] = ratio_count(self.states[gid].group.n_slots, t)
        return counts

    def removed_for(self, counts: dict[int, int]) -> dict[int, np.ndarray]:
        removed = {}
        for gid, count in counts.items():
            st = self.states[gid]
            allowed = st.limits.allowed(st.group.n_slots, count)
            sel = st.selected.get(allowed)
            if sel is None:
                sel = st.selected[allowed] = select_count(st.group, st.scores, allowed, st.tiebreak)
            if sel.size:
                removed[gid] = sel
        return removed

    def predict(self, removed) -> Cost | None:
        return self.cost_model.evaluate(removed) if self.cost_model is not None else None

    def decision(self, counts: dict[int, int], t: float, **extra) -> Decision:
        removed = self.removed_for(counts)
        return Decision(removed, dict(self.skipped), t, self.predict(removed),
                        scores={gid: st.scores for gid, st in self.states.items()}, **extra)

    # ------------------------------------------------------------------ modes
    def decide(self, latency: Callable | None = None) -> Decision:
        target = self.options.target
        if target is None:
            return self.decision(self.counts_at(self.options.ratio), self.options.ratio)
        kind, fraction = target
        if kind == "latency":
            if latency is None:
                raise ValueError("a latency target needs a latency measurement function")
            return self._search_latency(latency, fraction)
        if self.cost_model is None or self.reference is None:
            raise ValueError("a MAC/parameter target needs a cost model and the original model's cost")
        return self._search_cost(kind, fraction * getattr(self.reference, kind))

    def _metric(self, kind: str, counts) -> int:
        return getattr(self.cost_model.evaluate(self.removed_for(counts)), kind)

    def _search_cost(self, kind: str, goal: float) -> Decision:
        rows: list[dict] = []
        cache: dict[tuple, int] = {}

        def measure(counts, t=None) -> int:
            key = tuple(sorted(counts.items()))
            if key not in cache:
                cache[key] = self._metric(kind, counts)
                if t is not None:
                    rows.append({"t": round(t, 6), kind: cache[key]})
            return cache[key]

        lo, hi = 0.0, MAX_T
        c_lo, c_hi = self.counts_at(lo), self.counts_at(hi)
        if measure(c_lo, lo) <= goal:
            return self.decision(c_lo, lo, search=rows, notes=[f"target {kind} reached without pruning"])
        if measure(c_hi, hi) > goal:
            return self.decision(c_hi, hi, search=rows, notes=[
                f"target {kind} not reachable: the most the limits allow is kept"])
        for _ in range(TARGET_STEPS):
            if _distance(c_lo, c_hi) <= 1:
                break
            mid = (lo + hi) / 2
            c_mid = self.counts_at(mid)
            if measure(c_mid, mid) <= goal:
                hi, c_hi = mid, c_mid
            else:
                lo, c_lo = mid, c_mid
        best = self._refine(goal, c_lo, c_hi, measure)
        return self.decision(self._fill(goal, best, measure), hi, search=rows)

    def _refine(self, goal, c_lo, c_hi, measure) -> dict[int, int]:
        """Step from the plan above the goal towards the one below, one slot at a time; keep the closest."""
        candidates = [c_lo, c_hi]
        counts = dict(c_lo)
        while True:
            todo = [gid for gid in c_hi if counts.get(gid, 0) < c_hi[gid]]
            if not todo:
                break
            gid = min(todo, key=lambda g: (self._next_score(g, counts.get(g, 0)), g))
            counts[gid] = counts.get(gid, 0) + 1
            candidates.append(dict(counts))
            if measure(counts) <= goal:
                break
        return min(candidates, key=lambda c: (abs(measure(c) - goal), measure(c) > goal))

    def _fill(self, goal, counts, measure) -> dict[int, int]:
        """Greedy last steps: move one slot at a time (any group, one more or one less) while that
        brings the predicted cost closer to the goal. One slot of a wide group can weigh more than
        the tolerance; a slot of a narrow group then closes the gap."""
        best = dict(counts)
        for _ in range(FILL_STEPS):
            current = abs(measure(best) - goal)
            if current <= FILL_TOLERANCE * goal:
                break
            options = []
            for gid in self.states:
                for step in (1, -1):
                    trial = dict(best)
                    trial[gid] = trial.get(gid, 0) + step
                    if 0 <= trial[gid] < self.states[gid].group.n_slots:
                        options.append((abs(measure(trial) - goal), gid, step, trial))
            if not options:
                break
            distance, _, _, trial = min(options, key=lambda o: o[:3])
            if distance >= current:
                break
            best = trial
        return best

    def _next_score(self, gid: int, count: int) -> float:
        st = self.states[gid]
        if count >= st.order.size:
            return math.inf
        return float(st.normalized[st.order[count]])

    def _search_latency(self, latency: Callable, fraction: float) -> Decision:
        base = latency(self.removed_for(self.counts_at(0.0)))
        goal = fraction * base
        rows = [{"t": 0.0, "latency_ms": round(base, 4)}]
        lo, hi = 0.0, MAX_T
        best_t, best_ms = None, None
        for _ in range(LATENCY_STEPS):
            mid = (lo + hi) / 2
            ms = latency(self.removed_for(self.counts_at(mid)))
            rows.append({"t": round(mid, 6), "latency_ms": round(ms, 4)})
            if ms <= goal:
                hi, best_t, best_ms = mid, mid, ms
            else:
                lo = mid
        notes = [f"latency target {goal:.3f} ms ({fraction:g} of {base:.3f} ms): coarse search of "
                 f"{LATENCY_STEPS} steps"]
        if best_t is None:
            best_t = hi
            notes.append("latency target not reached within the search; the most pruned plan tried is kept")
        else:
            notes.append(f"chosen t={best_t:.4f}: {best_ms:.3f} ms measured")
        return self.decision(self.counts_at(best_t), best_t, search=rows, notes=notes)


def _distance(a: dict, b: dict) -> int:
    return sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b))


def _invalid_scores(scorer, group, index) -> Exception:
    """The error for non-finite scores: bad weights (exit 3), bad calibration data, or a bug."""
    from ..errors import DataError, InvalidModelError

    for param in group.params:
        arr = index.array(param.initializer)
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            return InvalidModelError(f"initializer {param.initializer!r} holds NaN or infinite values; its channels "
                                     "cannot be ranked (fix the weights, or keep its nodes with --exclude)")
    if scorer.needs_data:
        return DataError(f"importance {scorer.name}: the calibration data gives NaN or infinite statistics for "
                         f"group {group.id} ({group.title}); check the calibration inputs")
    return ValueError(f"importance {scorer.name} gave invalid scores for group {group.id}")
