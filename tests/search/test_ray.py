"""Trials on a real Ray: a local one in this process, a two-node cluster on loopback (a head and a
device), and a worker process killed with a real signal during a run."""
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import optuna
import pytest
import ray
import ray.cloudpickle
import torch

from hwnas.evaluators import Recipe, TrialSpec
from hwnas.search.config import RunConfig
from hwnas.search.errors import UsageError
from hwnas.search.executors.ray import RayExecutor
from hwnas.search.loop import run_search
from hwnas.search.study import load_study

pytestmark = pytest.mark.slow  # every test here trains networks or starts Ray

Complete, Fail = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL
GOOD = "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, conv_r1_k3_s2_c16_relu, head_relu"
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


def spec(number, genotype=GOOD, dataset="digits", **recipe):
    return TrialSpec(number, genotype, dataset, Recipe(epochs=1, **recipe))


def drain(executor, n):
    outcomes = []
    while len(outcomes) < n:
        outcomes += executor.wait()
    return {o.spec.number: o for o in outcomes}


def test_workers_that_cannot_be_placed_are_refused(local_ray):
    with pytest.raises(UsageError, match="--workers 3 x --cpus-per-trial 1 needs 3 CPUs; the Ray cluster has 2"):
        RayExecutor(workers=3)
    with pytest.raises(UsageError, match="needs 1 GPUs; the Ray cluster has 0"):
        RayExecutor(workers=1, gpus_per_trial=1)
    assert ray.is_initialized()  # a Ray it did not start is left alone


def test_a_device_s_cpus_are_not_the_trials(local_ray, monkeypatch):
    """The device's timer holds its node's CPUs: workers are planned on what is left, a resource
    no node advertises is refused, saying how a device joins, and a timer that cannot be placed
    stops the run rather than hanging it."""
    from hwnas.search.executors import device
    from hwnas.search.executors.device import DeviceNode, find_device, start_timer
    from hwnas.search.executors.ray import _plan

    assert _plan(None, None, None, DeviceNode("board", "n", 1, 0)) == (1, 1, 0.0)  # of the local Ray's 2
    with pytest.raises(UsageError, match=r"needs 2 CPUs; the Ray cluster has 1 besides the device's "
                                         r"\(--latency-on board\)"):
        _plan(2, None, None, DeviceNode("board", "n", 1, 0))
    with pytest.raises(UsageError, match="advertises the resource 'phone'.*--resources '{\"phone\": 1}'"):
        find_device("phone")
    monkeypatch.setattr(device, "PLACE_TIMEOUT", 1)
    with pytest.raises(UsageError, match=r"did not take its timer within 1 s: its timer needs the whole node"):
        start_timer(DeviceNode("phone", "n", 1, 0))  # nothing offers "phone": never placed


def test_faults_fail_the_trial_and_a_dead_worker_is_retried(local_ray):
    executor = RayExecutor(workers=2, max_retries=1)
    try:
        assert executor.capacity == 2 and executor.cpus == 1
        executor.submit(spec(0, lr=1e12))  # a real NaN loss
        executor.submit(spec(1, dataset="nope"))  # an exception in the trial
        out = drain(executor, 2)
        assert out[0].result is None and out[0].error.startswith("TrainingError: the loss became NaN or infinite in epoch 1")
        assert out[1].result is None and out[1].error.startswith("DataError")
        assert out[0].spec.device == "cpu" and out[0].retries == 0

        # kill the worker running a trial: it is rerun on a fresh worker; killed again, it fails
        pids = set(ray.get([w.pid.remote() for w in executor.workers()]))
        executor.submit(TrialSpec(2, GOOD, "digits", Recipe(epochs=30)))
        [running] = [w for w, _, _, _ in executor._running.values()]
        os.kill(ray.get(running.pid.remote()), signal.SIGKILL)
        assert executor.wait() == []  # resubmitted, nothing finished yet
        [(rerun, _, _, retries)] = executor._running.values()
        assert retries == 1 and ray.get(rerun.pid.remote()) not in pids
        os.kill(ray.get(rerun.pid.remote()), signal.SIGKILL)
        [failed] = executor.wait()
        assert failed.result is None and failed.retries == 1 and failed.error.startswith("worker died 2 times")
        executor.submit(spec(3))
        assert drain(executor, 1)[3].result.metrics.accuracy > 0.1
        assert len(executor.workers()) == 2
    finally:
        executor.close()


def test_workers_that_cannot_start_stop_the_run_with_one_line(local_ray, tmp_path, monkeypatch):
    """A worker whose creation fails (here: it cannot import the evaluate function, as on a node
    without the package) is not a trial fault: the run stops with one line instead of looping."""
    (tmp_path / "only_here.py").write_text("def evaluate(spec):\n    raise AssertionError('never runs')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import only_here

    config = RunConfig(trials=3, epochs=1, study="s", dir=str(tmp_path / "runs"), workers=2)
    with pytest.raises(UsageError, match="a Ray worker could not start: .*No module named 'only_here'"):
        run_search(config, RayExecutor(workers=2, evaluate=only_here.evaluate), progress=False, track=False)
    trials = load_study(str(tmp_path / "runs"), "s").trials
    failed = [t for t in trials if t.state == Fail]
    assert len(failed) == 2 and all(t.user_attrs["fail_reason"].startswith("abandoned: the search stopped")
                                    for t in failed)
    retried = [t for t in trials if t.state == optuna.trial.TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in retried) == sorted(t.number for t in failed)


def quiet_probe(marker, spec):
    """Times a stand-in model while the other trial trains; logs when each training step ran."""
    import torch

    from hwnas.evaluators import TrialResult, quiet

    while spec.number == 1 and not os.path.exists(marker):  # trial 1 times while trial 0 trains
        time.sleep(0.01)
    with quiet.measuring():
        t0 = time.perf_counter()
        threads = torch.get_num_threads()
        while time.perf_counter() - t0 < 0.3:
            pass
        timing = (t0, time.perf_counter())
    steps = []
    with quiet.training():
        for _ in range(150 if spec.number == 0 else 5):
            quiet.checkpoint()
            start = time.perf_counter()
            while time.perf_counter() - start < 0.01:
                pass
            steps.append((start, time.perf_counter()))
            if len(steps) == 5 and spec.number == 0:
                open(marker, "w").close()
    metrics = {"timing": timing, "steps": steps, "threads": threads, "train_threads": torch.get_num_threads()}
    return TrialResult(metrics)  # evaluate's result type (a probe's own figures); no model, no weights


def test_a_model_is_never_timed_while_another_trial_trains(local_ray, tmp_path):
    executor = RayExecutor(workers=2, evaluate=functools.partial(quiet_probe, str(tmp_path / "training")))
    try:
        executor.submit(spec(0))
        executor.submit(spec(1))
        out = {n: o.result.metrics for n, o in drain(executor, 2).items()}
    finally:
        executor.close()
    for me, other in ((0, 1), (1, 0)):
        t0, t1 = out[me]["timing"]
        assert not [s for s in out[other]["steps"] if s[0] < t1 and s[1] > t0], "a step ran during a timing"
    # trial 0 was training when trial 1 timed, and went on afterwards: it paused
    t0, t1 = out[1]["timing"]
    assert out[0]["steps"][0][0] < t0 and out[0]["steps"][-1][1] > t1
    # timing uses all the node's cores; training the worker's one
    assert out[1]["threads"] == len(os.sched_getaffinity(0)) and out[1]["train_threads"] == 1
    # the gate's account (benchmarks/gpu_check.py prints it): two timings, none the search process's,
    # the other trainer halted for at least as long as they ran
    (costs,) = executor.timing_costs.values()
    assert (costs.timings, costs.by_driver) == (2, 0)
    assert costs.held >= costs.parking and costs.held >= sum(out[n]["timing"][1] - out[n]["timing"][0] for n in out)


def test_a_sampler_s_pool_is_timed_in_one_quiet_phase(local_ray):
    """Candidates are built and counted first, then timed together: a trial beside the search
    process parks once for a pool, not once a candidate. A broken one is no candidate."""
    from hwnas.evaluators import evaluation_for, quiet
    from hwnas.spaces import Evaluated

    pool = [GOOD, GOOD.replace("c16", "c24"), GOOD.replace("ds_r1", "ir_r1").replace("_c16", "_e3_c16", 1), "nonsense"]
    evaluation = evaluation_for(Evaluated.TRAINED, "digits")
    executor = RayExecutor(workers=1)
    quiet.install(executor.driver_quiet())
    try:
        with quiet.training():  # as the search process asks
            figures = evaluation.screen(pool)
    finally:
        quiet.install(quiet.Alone())
        executor.close()
    assert [f is None for f in figures] == [False, False, False, True]
    assert all(f is not None and f.latency_ms and f.macs for f in figures[:3])
    assert len({f.macs for f in figures[:3] if f is not None}) == 3  # three networks, each its own figures
    (costs,) = executor.timing_costs.values()
    assert (costs.timings, costs.by_driver) == (1, 1)


def test_the_driver_s_own_work_keeps_out_of_timings(local_ray, tmp_path):
    """The search process (screening, logging) shares the node's cores: a worker's timing waits
    until it pauses at a checkpoint, and it does not work while the timing runs."""
    executor = RayExecutor(workers=1, evaluate=functools.partial(quiet_probe, str(tmp_path / "training")))
    driver = executor.driver_quiet()
    try:
        with driver.training():  # work with no checkpoint: the trial's timing must wait for it
            executor.submit(spec(0))
            time.sleep(1.0)
            released = time.perf_counter()
        first = drain(executor, 1)[0].result.metrics
        work = []
        with driver.training():  # work with checkpoints: the timing happens in one of its pauses
            executor.submit(spec(0))
            while not ray.wait(list(executor._running), timeout=0)[0]:
                driver.checkpoint()
                start = time.perf_counter()
                while time.perf_counter() - start < 0.01:
                    pass
                work.append((start, time.perf_counter()))
        second = drain(executor, 1)[0].result.metrics
    finally:
        executor.close()
    assert first["timing"][0] >= released
    t0, t1 = second["timing"]
    assert work[0][0] < t0 and work[-1][1] > t1, "the timing ran while the driver was working"
    assert not [w for w in work if w[0] < t1 and w[1] > t0], "the driver worked during a timing"


def timing_inside_a_section(marker, spec):
    """As a trial times: inside its own training section. Trial 1 is busy (no checkpoint) when
    trial 0 asks to time, then asks to time itself."""
    from hwnas.evaluators import TrialResult, quiet

    with quiet.training():
        if spec.number == 1:
            open(marker, "w").close()
            start = time.perf_counter()
            while time.perf_counter() - start < 0.5:
                pass
            busy = (start, time.perf_counter())
        else:
            while not os.path.exists(marker):
                time.sleep(0.01)
            busy = None
        with quiet.measuring():
            t0 = time.perf_counter()
            time.sleep(0.1)
            timing = (t0, time.perf_counter())
    return TrialResult({"timing": timing, "busy": busy})


def test_trials_that_time_inside_their_sections_take_turns(local_ray, tmp_path):
    executor = RayExecutor(workers=2, evaluate=functools.partial(timing_inside_a_section, str(tmp_path / "busy")))
    out = {}
    try:
        executor.submit(spec(0))
        executor.submit(spec(1))
        waiter = threading.Thread(target=lambda: out.update(drain(executor, 2)), daemon=True)
        waiter.start()
        waiter.join(timeout=60)
    finally:
        executor.close()
    assert len(out) == 2, "the two timings waited for each other"
    first, second, busy = (out[0].result.metrics["timing"], out[1].result.metrics["timing"],
                         out[1].result.metrics["busy"])
    assert first[0] >= busy[1], "trial 0 timed while trial 1 was busy"
    assert second[0] >= first[1], "the two timings overlapped"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_start(args: list[str], env: dict, temp_dir: str) -> subprocess.Popen:
    """A Ray node of this test's own, up when this returns. --block: its processes are this one's
    children, stopped with it (`ray stop` would stop every Ray on the machine, other users' too)."""
    node = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--block",
                             "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 90
    assert node.stdout is not None
    for line in node.stdout:  # it says so once it is up, then blocks
        if "Ray runtime started" in line:
            threading.Thread(target=node.stdout.read, daemon=True).start()  # a full pipe would stall it
            return node
        assert time.monotonic() < deadline, f"ray start {' '.join(args)} did not come up"
    raise AssertionError(f"ray start {' '.join(args)} exited with {node.wait()}")


def test_a_search_on_two_nodes_trains_on_one_and_times_on_the_device(cli, tmp_path):
    """A head, and a second node on loopback advertising the custom resource "board" (as a device
    joins): trials train on the head, and every candidate is timed on the board."""
    port = free_port()
    temp_dir = tempfile.mkdtemp(prefix="ray")  # short: Ray's socket paths must fit in 107 bytes
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    nodes = []
    try:
        nodes.append(ray_start(["--head", "--port", str(port), "--num-cpus", "2", "--include-dashboard", "false",
                                "--temp-dir", temp_dir], env, temp_dir))
        nodes.append(ray_start(["--address", f"127.0.0.1:{port}", "--num-cpus", "1",
                                "--resources", '{"board": 1}'], env, temp_dir))
        r = cli("run", "--trials", "3", "--epochs", "1", "--workers", "2", "--study", "s", "--dir", str(tmp_path),
                "--sampler", "hybrid", "--ray-address", f"127.0.0.1:{port}", "--latency-on", "board", env=env)
        assert r.returncode == 0, r.stderr
        # the board's CPU is its timer's: both workers train on the head's two
        assert f"the Ray cluster at 127.0.0.1:{port}, 2 workers x 1 CPU; latency timed on node " in r.stderr
        board = r.stderr.split("latency timed on node ")[1].split()[0]  # found by its resource
        assert "[3/3]" in r.stderr
        study = load_study(str(tmp_path), "s")
        done = study.get_trials(states=(Complete,))
        assert len(done) == 3 and all(t.user_attrs["device"] == "cpu" for t in done)
        # ...and recorded by the timer from where it ran
        assert {t.user_attrs["latency_node"] for t in done} == {board}
        trained_on = {t.user_attrs["train_node"] for t in done}
        assert len(trained_on) == 1 and board not in trained_on
        assert all(t.user_attrs["latency_ms"] > 0 and t.user_attrs["latency_anchor_ms"] > 0 for t in done)
    finally:
        for node in reversed(nodes):
            node.terminate()
            node.wait(timeout=60)
        shutil.rmtree(temp_dir, ignore_errors=True)
    # a fresh process: this one may be in the module's local Ray, which a run would join
    r = cli("run", "--trials", "1", "--study", "t", "--dir", str(tmp_path), "--ray-address", f"127.0.0.1:{port}")
    assert r.returncode == 2 and "cannot reach a Ray cluster" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t").exists()


def _running_trial_worker(pid: int) -> int | None:
    """A Ray worker process under ``pid`` that is running a trial (Ray names it ray::TrialWorker.run)."""
    for p in _all_descendants(pid):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::TrialWorker.run"):
                    return p
        except OSError:
            pass
    return None


def _all_descendants(pid: int) -> list[int]:
    parent = {}
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/stat") as f:
                    parent[int(p)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, frontier = [], {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier}
        found += frontier
    return found


def test_killing_a_worker_during_a_run(tmp_path):
    run = subprocess.Popen([sys.executable, "-m", "hwnas.search", "run", "--trials", "4", "--epochs", "2", "--workers", "2",
                            "--study", "s", "--dir", str(tmp_path), "--sampler", "random", "--early-stop", "none"],
                           cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and run.poll() is None and time.monotonic() < deadline:
        killed = _running_trial_worker(run.pid)
        time.sleep(0.05)
    assert killed, "no worker ran a trial"
    os.kill(killed, signal.SIGKILL)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert out.startswith("trial ") and "raylet" not in out  # stdout holds the front table only
    assert "A worker died" in err  # Ray's notice, moved to stderr
    study = load_study(str(tmp_path), "s")
    assert len(study.get_trials(states=(Complete,))) == 4
    touched = [t for t in study.trials if t.user_attrs.get("retries") or t.state == Fail]
    assert touched and all(t.user_attrs.get("retries", 0) >= 1 or "worker died" in t.user_attrs["fail_reason"]
                           for t in touched)


@pytest.mark.parametrize("args,fragment", [
    (["--workers", "0"], "--workers must be a positive integer, got 0"),
    (["--cpus-per-trial", "-1"], "--cpus-per-trial must be a positive integer, got -1"),
    (["--gpus-per-trial", "-0.5"], "--gpus-per-trial must be a number >= 0, got -0.5"),
])
def test_bad_resources_are_one_line_and_exit_2(search_here, tmp_path, args, fragment):
    r = search_here("run", "--dir", str(tmp_path), *args)
    assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_asking_process_gets_its_threads_back(local_ray):
    """While a Ray search runs, the asking process keeps to one torch thread (the workers own the
    cores); closed, it has its own count again (a notebook's torch is not left on one thread)."""
    torch.set_num_threads(2)
    executor = RayExecutor(workers=1)
    try:
        assert torch.get_num_threads() == 1
    finally:
        executor.close()
    assert torch.get_num_threads() == 2
