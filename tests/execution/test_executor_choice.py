"""Choosing the executor: --executor local|ray and --ray-address on prune/plan/sensitivity, the
usage errors (Ray missing, an address without Ray), Options, and Ctrl-C stopping local workers."""
from __future__ import annotations

import _thread
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from graphprune.cli import main
from graphprune.errors import UsageError
from graphprune.execution.executor import Context, LocalExecutor
from graphprune.execution.ray_executor import INSTALL_HINT, ray_installed
from graphprune.pipeline import Options
from tests.helpers import workers
from tests.helpers.interrupts import ctrl_c_reaches_this_process
from tests.helpers.paths import ROOT

DEMO = str(ROOT / "models" / "demo.onnx")


@pytest.mark.parametrize("command", [["prune", DEMO, "-o", "OUT", "--ratio", "0.3"], ["plan", DEMO, "-o", "OUT"],
                                     ["sensitivity", DEMO, "--report", "OUT"]])
def test_executor_ray_without_ray_says_how_to_install_it(command, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as if it were not installed
    out = tmp_path / "out.json"
    argv = [str(out) if a == "OUT" else a for a in command]
    assert main([*argv, "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert f"--executor ray needs the 'ray' package, which is not installed: {INSTALL_HINT}" in err
    assert err.count("\n") == 1 and not out.exists() and not ray_installed()


def test_a_failing_import_of_ray_is_one_line_usage_error_in_a_fresh_process(tmp_path):
    """A process whose ``import ray`` fails (a finder that refuses it, as if it were not installed)."""
    out = tmp_path / "slim.onnx"
    script = textwrap.dedent(f"""
        import sys
        class NoRay:
            def find_spec(self, name, path=None, target=None):
                if name == "ray" or name.startswith("ray."):
                    raise ModuleNotFoundError(f"No module named {{name!r}}")
        sys.meta_path.insert(0, NoRay())
        from graphprune.cli import main
        sys.exit(main(["prune", {DEMO!r}, "-o", {str(out)!r}, "--ratio", "0.3", "--executor", "ray"]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"graphprune: error: --executor ray needs the 'ray' package, which is not installed: {INSTALL_HINT} "
        "(or use --executor local)"]
    assert INSTALL_HINT == 'pip install "graphprune[ray]"' and not out.exists()


def test_a_ray_address_needs_the_ray_executor(tmp_path, capsys):
    assert main(["prune", DEMO, "-o", str(tmp_path / "o.onnx"), "--ray-address", "127.0.0.1:6379"]) == 2
    assert "--ray-address names the cluster of --executor ray" in capsys.readouterr().err
    assert not (tmp_path / "o.onnx").exists()


def test_options_take_an_executor_name_or_instance():
    with pytest.raises(UsageError, match=r"--executor must be one of local, ray .*'dask'"):
        Options(executor="dask")
    executor = LocalExecutor(jobs=1)
    assert Options(executor=executor).executor is executor and Options(executor="local").executor == "local"
    assert ray_installed()  # the test extra installs it
    assert Options(executor="ray", ray_address="10.1.2.3:6379").ray_address == "10.1.2.3:6379"


@pytest.mark.parametrize("command", ["prune", "plan", "sensitivity"])
def test_the_executor_flags_are_documented_and_ray_is_not_imported_for_help(command):
    script = (f"import sys\nfrom graphprune.cli import main\ntry:\n    main([{command!r}, '--help'])\n"
              "except SystemExit:\n    pass\nprint('ray imported' if 'ray' in sys.modules else 'ray not imported')")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert "--executor {local,ray}" in done.stdout and "--ray-address HOST:PORT" in done.stdout
    assert done.stdout.strip().endswith("ray not imported")


def test_an_interrupt_stops_local_workers(tmp_path):
    held = []

    def interrupt():
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob("held.*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        held.extend(int(p.read_text()) for p in tmp_path.glob("held.*"))
        _thread.interrupt_main()

    executor = LocalExecutor(jobs=2)
    with ctrl_c_reaches_this_process(), pytest.raises(KeyboardInterrupt):
        threading.Thread(target=interrupt, daemon=True).start()
        executor.map(workers.held, ["hold", "a", "b"], context=Context(workers.remember, str(tmp_path)))
    assert held and executor._pool is None  # the pool was terminated by map itself
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{held[0]}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{held[0]}") and not (tmp_path / "finished").exists()
    assert executor.map(workers.scaled, [1, 2], context=Context(workers.remember, 3))[1][0] == 6  # new workers
    executor.close()


def test_a_local_worker_that_dies_ends_the_map_with_exit_code_5_instead_of_waiting_forever():
    from graphprune.errors import WorkerLost

    executor = LocalExecutor(2)
    try:
        started = time.monotonic()
        with pytest.raises(WorkerLost, match=r"task \d of 3: a worker process died") as caught:
            executor.map(workers.dies, ["ok", "die", "ok"], context=Context(workers.remember, 0))
        assert caught.value.exit_code == 5 and time.monotonic() - started < 30
        # the executor starts new workers for the next map
        assert [r[0] for r in executor.map(workers.scaled, [1, 2], context=Context(workers.remember, 3))] == [3, 6]
    finally:
        executor.close()
