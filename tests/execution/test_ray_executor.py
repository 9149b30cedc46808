"""The Ray executor on a real local cluster (a head and two worker nodes, processes on 127.0.0.1,
started once for the module): the same statistics, sensitivity, plans and written bytes as the
local executor; a killed worker's task runs again with the same result; Ctrl-C cancels the tasks
and nothing is written."""
from __future__ import annotations

import _thread
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from functools import partial

import numpy as np
import onnx
import pytest

from graphprune.calibration import activation_spaces, calibrate
from graphprune.calibration.shards import calibrate_sharded
from graphprune.cli import main
from graphprune.execution.candidates import Candidate, measure, zeroing_context
from graphprune.errors import EXIT_CODES, DataError
from graphprune.execution.executor import Context, LocalExecutor
from graphprune.execution.ray_executor import RayExecutor, WorkerLost, ray_installed
from graphprune.graph.model import to_proto
from graphprune.importance import MagnitudeImportance
from graphprune.pipeline import Options, analyze, load, prepare
from graphprune.planning.select import select_by_ratio
from models.zoo import build
from tests.helpers import ray_cluster, workers
from tests.helpers.interrupts import ctrl_c_reaches_the_child, ctrl_c_reaches_this_process
from tests.helpers.onnxrt import run
from tests.helpers.paths import ROOT

#: every test of this module shares one cluster, so they run on one pytest-xdist worker
pytestmark = pytest.mark.xdist_group("ray-cluster")

SAMPLES = 40  # calibration samples: 30 calibrate (two shards of 16), 10 are held out


@pytest.fixture(scope="module")
def cluster():
    if not ray_installed():
        pytest.fail('the ray extra (in the test extra) is not installed: pip install "graphprune[ray]"', pytrace=False)
    with ray_cluster.local_cluster(str(ROOT)) as started:
        yield started


@pytest.fixture(scope="module")
def resnet(tmp_path_factory):
    """resnet18 of the zoo, its seeded calibration samples, and both as files."""
    model = build("resnet18")
    x = np.random.default_rng(7).standard_normal((SAMPLES, 1, 3, 64, 64)).astype(np.float32)
    folder = tmp_path_factory.mktemp("resnet")
    (folder / "m.onnx").write_bytes(model.SerializeToString())
    np.savez(folder / "calib.npz", input=x)
    return model, {"input": x}, folder


def _analyzed(model, options):
    return analyze(prepare(load(model), options), options)


def _halves(analyzed):
    """One candidate per prunable group: its lower-scoring half removed (by L2)."""
    analysis = analyzed.analysis
    return [Candidate.of({g.id: select_by_ratio(g, MagnitudeImportance(2).score(g, analysis.index), 0.5)})
            for g in analysis.prunable_groups]


def test_calibration_shards_reduce_to_the_sequential_statistics(cluster, resnet):
    model, calib, _ = resnet
    options = Options(calib=calib, refit=True)
    analyzed = _analyzed(model, options)
    analysis = analyzed.analysis
    spaces = activation_spaces(analysis.prunable_groups, analysis.index)
    sizes = {s: analysis.groups[analysis.space_group[s]].sizes[s] for s in spaces}
    proto = to_proto(analyzed.prepared.model)
    feeds = [{"input": x} for x in calib["input"]]
    sequential = calibrate(proto, spaces, iter(feeds), sizes=sizes, gram=spaces)
    with RayExecutor(address=cluster.address) as executor:
        assert executor.width == 2 and len(set(executor.slot_pids())) == 2
        sharded = calibrate_sharded(proto, spaces, calib, range(SAMPLES), executor, sizes=sizes, gram=spaces)
    assert sharded.samples == sequential.samples == SAMPLES and sharded.spaces.keys() == sequential.spaces.keys()
    for space, expected in sequential.spaces.items():
        got = sharded.spaces[space]
        assert got.count == expected.count and got.shape == expected.shape
        for name in ("total", "squares", "absolute", "gram"):  # the same sums added in the same order: same bits
            assert np.array_equal(getattr(got, name), getattr(expected, name)), (space, name)
    # and the sums are those of the activations themselves (onnxruntime here, no graphprune)
    space = spaces[0]
    exposed = to_proto(analyzed.prepared.model)
    exposed.graph.output.append(onnx.helper.make_empty_tensor_value_info(space.tensor))
    values = np.stack([run(exposed, f)[space.tensor] for f in feeds]).astype(np.float64)
    per_channel = np.moveaxis(values, space.axis + 1, 0).reshape(sizes[space], -1)
    np.testing.assert_allclose(sharded.spaces[space].mean, per_channel.mean(axis=1), rtol=1e-6, atol=1e-9)


def test_sensitivity_and_budget_search_equal_the_local_executor(cluster, resnet, tmp_path):
    model, calib, folder = resnet
    from graphprune.api import sensitivity

    with RayExecutor(address=cluster.address) as executor:
        remote = sensitivity(model, calib=calib, ratios=(0.25, 0.5), executor=executor)
    local = sensitivity(model, calib=calib, ratios=(0.25, 0.5), jobs=2)
    assert remote.to_dict() == local.to_dict()
    assert len(remote.rows) == 12 and all(d > 0 for r in remote.rows for d in r["drift"])
    assert sum(r["drift"][1] for r in remote.rows) > sum(r["drift"][0] for r in remote.rows)

    common = ["prune", str(folder / "m.onnx"), "--calib", str(folder / "calib.npz"), "--max-drift", "0.05",
              "--refit", "--json"]
    assert main([*common, "-o", str(tmp_path / "local.onnx"), "--jobs", "2"]) == 0
    assert main([*common, "-o", str(tmp_path / "ray.onnx"), "--executor", "ray", "--ray-address",
                 cluster.address]) == 0
    written = (tmp_path / "ray.onnx").read_bytes()
    assert written == (tmp_path / "local.onnx").read_bytes() and len(written) < len(model.SerializeToString())


def test_the_budget_plans_are_equal(cluster, resnet, tmp_path, capsys):
    _, _, folder = resnet
    plans = {}
    for name, extra in (("local", ["--jobs", "2"]), ("ray", ["--executor", "ray", "--ray-address", cluster.address])):
        assert main(["plan", str(folder / "m.onnx"), "-o", str(tmp_path / f"{name}.json"), "--calib",
                     str(folder / "calib.npz"), "--max-drift", "0.05", *extra]) == 0
        plans[name] = json.loads((tmp_path / f"{name}.json").read_text())
    capsys.readouterr()
    assert plans["ray"] == plans["local"]
    pruned = [g for g in plans["ray"]["groups"] if g["status"] == "pruned"]
    assert pruned and all(0 < len(g["removed_slots"]) < g["slots"] for g in pruned)  # the search pruned


def test_the_cluster_comes_from_the_address_the_environment_or_a_local_ray(cluster, monkeypatch, caplog):
    import ray

    monkeypatch.setenv("RAY_ADDRESS", cluster.address)
    with RayExecutor(jobs=5) as executor:
        assert executor.width == 2 and "the Ray cluster has 2 CPUs" in caplog.text  # never more actors than CPUs
        assert ray.get_runtime_context().gcs_address == cluster.address
    assert not ray.is_initialized()  # it connected, so it disconnects
    monkeypatch.delenv("RAY_ADDRESS")
    with RayExecutor(jobs=1) as executor:  # no address: a Ray of its own on this machine, stopped by close
        assert executor.map(workers.scaled, [2, 3], context=Context(workers.remember, 5))[1][0] == 15
        assert ray.get_runtime_context().gcs_address != cluster.address and executor.where == "a local Ray"
    assert not ray.is_initialized()


def test_the_payload_goes_to_the_object_store_once_and_each_worker_sets_up_once(cluster, monkeypatch):
    import ray

    puts: list = []
    real_put = ray.put
    monkeypatch.setattr(ray, "put", lambda value, **kw: puts.append(value) or real_put(value, **kw))
    payload, other = Context(workers.remember, 7), Context(workers.remember, 7)
    with RayExecutor(address=cluster.address) as executor:
        first = executor.map(workers.scaled, list(range(10)), context=payload)
        again = executor.map(workers.scaled, list(range(10, 16)), context=payload)
        fresh = executor.map(workers.scaled, [1, 2, 3, 4], context=other)  # an equal payload, another context
    assert [r[0] for r in first + again] == [7 * t for t in range(16)]
    setups = {(r[1], r[2]) for r in first + again}
    assert len(setups) == 2 and len({pid for _, pid in setups}) == 2  # one state per worker, kept between maps
    assert not {r[1] for r in fresh} & {s for s, _ in setups}  # a new context builds new states
    assert puts == [7, 7]  # one put per context, never one per task


def test_an_error_in_a_task_is_raised_as_itself(cluster):
    with RayExecutor(address=cluster.address) as executor:
        with pytest.raises(DataError, match="sample bad: refused") as caught:
            executor.map(workers.refused, ["ok", "bad", "ok"], context=Context(workers.remember, 0))
        assert caught.value.exit_code == 3
        assert executor.map(workers.refused, ["ok"], context=Context(workers.remember, 0)) == ["ok"]


def test_a_task_that_kills_every_worker_it_runs_on_ends_with_exit_code_5(cluster):
    with RayExecutor(address=cluster.address, jobs=1) as executor:
        # both tasks wait on the one actor: whichever is collected first reports the lost worker
        with pytest.raises(WorkerLost, match=r"task [12] of 2: its Ray worker died 4 times") as caught:
            executor.map(workers.dies, ["ok", "die"], context=Context(workers.remember, 0))
    assert caught.value.exit_code == 5 and "workers were lost" in EXIT_CODES[5]


def test_a_killed_worker_has_its_task_run_again_with_the_same_result(cluster, resnet, tmp_path):
    model, calib, _ = resnet
    options = Options()
    analyzed = _analyzed(model, options)
    feeds = [{"input": x} for x in calib["input"][:4]]
    context = zeroing_context(analyzed.prepared.model, analyzed.analysis, feeds)
    candidates = _halves(analyzed)
    with LocalExecutor(jobs=1) as here:
        expected = [d.to_dict() for d in measure(here, context, candidates)]
    victim = candidates[5]
    task = partial(ray_cluster.held_drift, gate=str(tmp_path), victim=victim)

    def kill_the_victim():
        pid = ray_cluster.waiting_pid(tmp_path)
        os.kill(pid, signal.SIGKILL)
        ray_cluster.wait_until(lambda: not ray_cluster.alive(pid), 30, f"worker {pid} killed")
        (tmp_path / "released").write_text("")
        killed.append(pid)

    killed: list = []
    killer = threading.Thread(target=kill_the_victim, daemon=True)
    with RayExecutor(address=cluster.address) as executor:
        before = set(executor.slot_pids())
        killer.start()
        results = executor.map(task, candidates, context=context)
        killer.join(timeout=60)
        after = set(executor.slot_pids())
    assert killed and killed[0] in before and killed[0] not in after and len(after) == 2  # restarted
    assert [d.to_dict() for _, d in results] == expected
    finisher = results[candidates.index(victim)][0]
    assert finisher != killed[0] and (tmp_path / f"finished.{finisher}").exists()


def test_an_interrupt_cancels_the_running_tasks(cluster, resnet, tmp_path):
    import ray

    model, calib, _ = resnet
    analyzed = _analyzed(model, Options())
    context = zeroing_context(analyzed.prepared.model, analyzed.analysis, [{"input": calib["input"][0]}])
    candidates = _halves(analyzed)
    task = partial(ray_cluster.held_drift, gate=str(tmp_path), victim=candidates[0])
    held: list = []

    def interrupt():
        held.append(ray_cluster.waiting_pid(tmp_path))
        _thread.interrupt_main()

    with RayExecutor(address=cluster.address) as executor:
        with ctrl_c_reaches_this_process(), pytest.raises(KeyboardInterrupt):
            threading.Thread(target=interrupt, daemon=True).start()
            executor.map(task, candidates, context=context)
        # the held task never finishes: its worker is stopped, and every CPU of the cluster is free again
        ray_cluster.wait_until(lambda: not ray_cluster.alive(held[0]), 30, "the held worker stopped")
        ray_cluster.wait_until(lambda: ray.available_resources().get("CPU") == 2.0, 30, "both CPUs free")
        assert not list(tmp_path.glob("finished.*"))
        # the executor starts new workers for the next map
        assert [d for _, d in executor.map(task, candidates[1:3], context=context)][0].samples == 1


def test_ctrl_c_stops_the_command_and_writes_nothing(cluster, resnet, tmp_path):
    _, _, folder = resnet
    out = tmp_path / "slim.onnx"
    script = textwrap.dedent(f"""
        import sys
        from functools import partial
        from graphprune.pipeline import candidates
        from tests.helpers import ray_cluster
        # the first sensitivity task holds until the test interrupts the command
        candidates.zeroed_drift = partial(ray_cluster.first_held_drift, gate={str(tmp_path)!r})
        from graphprune.cli import main
        sys.exit(main(["prune", {str(folder / "m.onnx")!r}, "-o", {str(out)!r}, "--calib",
                       {str(folder / "calib.npz")!r}, "--max-drift", "0.05", "--executor", "ray",
                       "--ray-address", {cluster.address!r}]))
    """)
    command = subprocess.Popen([sys.executable, "-c", script], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_the_child)
    try:
        pid = ray_cluster.waiting_pid(tmp_path, timeout=120, command=command)
        assert command.poll() is None
        command.send_signal(signal.SIGINT)
        stdout, stderr = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 130, stderr
    assert "graphprune: interrupted" in stderr and stdout == ""
    assert not out.exists() and not list(tmp_path.glob("*.onnx*"))
    ray_cluster.wait_until(lambda: not ray_cluster.alive(pid), 30, "the held worker stopped")
    assert not list(tmp_path.glob("finished.*"))
