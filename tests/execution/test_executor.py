"""Executors: results in task order and independent of the number of workers, the shared payload
built once per worker, jobs=1 in process, and scripts without a main guard."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from graphprune.analysis.builder import analyze
from graphprune.errors import UsageError
from graphprune.execution.candidates import Candidate, measure, zeroing_context
from graphprune.execution.executor import Context, LocalExecutor, check_jobs
from graphprune.graph.index import GraphIndex
from graphprune.graph.model import from_proto
from tests.helpers.budget import DEAD, calibration_arrays, planted_chain
from tests.helpers import workers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_jobs_1_runs_in_process_and_builds_the_state_once():
    context = Context(workers.remember, 3)
    with LocalExecutor(jobs=1) as executor:
        first = executor.map(workers.scaled, [1, 2, 5], context=context)
        again = executor.map(workers.scaled, [7], context=context)
    assert [r[0] for r in first] == [3, 6, 15] and again[0][0] == 21
    assert {r[1] for r in first + again} == {first[0][1]} and first[0][2] == os.getpid()


def test_workers_build_the_state_once_each_and_return_results_in_order():
    context = Context(workers.remember, 2)
    with LocalExecutor(jobs=2) as executor:
        results = executor.map(workers.scaled, list(range(12)), context=context)
        more = executor.map(workers.scaled, [100], context=context)  # the same workers, no new setup
    assert [r[0] for r in results] == [2 * t for t in range(12)] and more[0][0] == 200
    by_pid = {}
    for _, setup, pid in results + more:
        by_pid.setdefault(pid, set()).add(setup)
    assert os.getpid() not in by_pid and 1 <= len(by_pid) <= 2
    assert all(len(setups) == 1 for setups in by_pid.values())  # one setup per worker, not per task


def _chain_candidates():
    model = planted_chain()
    graph = from_proto(model)
    analysis = analyze(GraphIndex(graph))
    feeds = [{"x": x} for x in calibration_arrays(6)["x"]]
    rng = np.random.default_rng(3)
    candidates = [Candidate.of({g.id: np.sort(rng.choice(32, size=k, replace=False))}, samples)
                  for g in analysis.prunable_groups for k, samples in ((4, None), (12, 3))]
    candidates.append(Candidate.of({0: list(DEAD), 2: list(DEAD)}))
    return graph, analysis, feeds, candidates


def test_candidate_drifts_are_identical_for_one_and_two_workers():
    graph, analysis, feeds, candidates = _chain_candidates()
    context = zeroing_context(graph, analysis, feeds)
    with LocalExecutor(jobs=1) as one, LocalExecutor(jobs=2) as two:
        serial = measure(one, context, candidates)
        parallel = measure(two, context, candidates)
    assert [d.to_dict() for d in serial] == [d.to_dict() for d in parallel]
    assert [d.samples for d in serial] == [6, 3] * 3 + [6]
    sensitive = [d.value("rel") for d, c in zip(serial, candidates) if 1 in c.removed]
    assert len(sensitive) == 2 and min(sensitive) > 1e-3    # live channels go: the outputs move
    assert serial[-1].value("rel") < 1e-3                     # only the planted dead channels go


def test_jobs_must_be_a_positive_integer():
    assert check_jobs(None) == (os.cpu_count() or 1) and check_jobs(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="--jobs"):
            check_jobs(bad)


def test_a_script_without_a_main_guard_runs_once(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(textwrap.dedent("""
        from graphprune.execution.executor import Context, LocalExecutor
        from tests.helpers import workers
        print("main ran")
        with LocalExecutor(jobs=2) as executor:
            print(sorted(r[0] for r in executor.map(workers.scaled, [1, 2, 3], context=Context(workers.remember, 10))))
    """))
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["main ran", "[10, 20, 30]"]
