import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pytest

from hwnas.search.config import RunConfig
from hwnas.search.observers.tracking import Store, Tracker
from hwnas.search.pareto import hypervolume, normalised_losses, study_hypervolume
from hwnas.search.study import load_study, open_study

ROOT = Path(__file__).resolve().parents[2]
CHILD_METRICS = {"accuracy", "test_accuracy", "macs", "params", "latency_ms"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_hypervolume_by_hand():
    # two boxes of 0.4 x 0.8 overlapping in a 0.4 x 0.4 square
    assert hypervolume(np.array([[0.2, 0.6], [0.6, 0.2]])) == pytest.approx(0.48)
    assert hypervolume(np.array([[0.5, 0.5, 0.5], [0.6, 0.6, 0.6]])) == pytest.approx(0.125)
    assert hypervolume(np.array([[1.0, 0.0]])) == 0.0  # on the reference point's edge: no volume
    losses = normalised_losses(np.array([[0.9, 2.0], [0.5, 4.0]]), [True, False], np.array([1.0, 4.0]))
    assert losses == pytest.approx(np.array([[0.1, 0.5], [0.5, 1.0]]))


def test_a_maximised_rate_is_a_share_of_the_best():
    """throughput (images/s, not a fraction): its loss is 1 - its share of the largest seen."""
    study = optuna.create_study(directions=["maximize", "maximize"])
    study.set_metric_names(["accuracy", "throughput"])
    for values in ([0.9, 1000.0], [0.8, 4000.0]):
        study.add_trial(optuna.trial.create_trial(values=values))
    # losses (0.1, 0.75) and (0.2, 0): boxes 0.9 x 0.25 and 0.8 x 1 overlapping in 0.8 x 0.25
    assert study_hypervolume(study) == pytest.approx(0.9 * 0.25 + 0.8 * 1.0 - 0.8 * 0.25)


def test_default_store_is_the_checkouts_mlflow_folder(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    store = Store.resolve()
    assert store.uri == f"sqlite:///{ROOT / 'mlflow' / 'mlflow.db'}"
    assert store.artifact_root == ROOT / "mlflow" / "artifacts"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://example.invalid:5000")
    assert Store.resolve() == Store("http://example.invalid:5000", None)
    # mlflow/ at the repository root holds the store, not a package: the library still imports
    r = subprocess.run([sys.executable, "-c", "import mlflow; print(mlflow.__file__)"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0 and not r.stdout.strip().startswith(str(ROOT / "mlflow")), r.stdout + r.stderr


def _tell(study, metrics: dict | None, genotype: str, fail: str | None = None):
    trial = study.ask()
    trial.set_user_attr("genotype", genotype)
    if fail:
        trial.set_user_attr("fail_reason", fail)
        return study.tell(trial, state=optuna.trial.TrialState.FAIL)
    trial.set_user_attr("metrics", metrics)
    for k, v in metrics.items():
        trial.set_user_attr(k, v)
    return study.tell(trial, [metrics[o] for o in ("accuracy", "latency_ms", "macs")])


def test_failed_runs_and_pareto_tags_follow_the_front(tmp_path, mlflow_store):
    from mlflow.tracking import MlflowClient

    config = RunConfig(study="tags-check", dir=str(tmp_path), trials=3, sampler="random")
    study = open_study(config)
    tracker = Tracker(study, config)
    g = "stem_c8_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_relu"
    m = lambda acc, lat, macs: {"accuracy": acc, "test_accuracy": acc, "latency_ms": lat, "macs": macs, "params": 100}
    first = _tell(study, m(0.5, 2.0, 2000), g)
    tracker(study, first)
    failed = _tell(study, None, "stem_c8_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_c4_relu", fail="TrainingError: nan")
    tracker(study, failed)
    better = _tell(study, m(0.9, 1.0, 1000), "stem_c16_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_relu")
    tracker(study, better)
    tracker.close(study)
    assert tracker.error is None

    client = MlflowClient(mlflow_store)
    exp = client.get_experiment_by_name("tags-check")
    runs = {r.data.tags.get("trial", "parent"): r for r in client.search_runs([exp.experiment_id])}
    assert sorted(runs) == ["0", "1", "2", "parent"]
    assert runs["1"].info.status == "FAILED" and runs["1"].data.tags["fail_reason"] == "TrainingError: nan"
    assert runs["1"].data.tags["state"] == "FAIL" and runs["1"].data.params["genotype"].endswith("head_c4_relu")
    # trial 2 dominates trial 0, which was on the front when it was logged
    assert {k: r.data.tags.get("pareto") for k, r in runs.items()} == {
        "0": "false", "1": "false", "2": "true", "parent": None}
    assert runs["2"].data.metrics.keys() >= CHILD_METRICS
    assert runs["parent"].data.metrics["hypervolume"] == pytest.approx(study_hypervolume(study))
    # normalised by the largest costs (2 ms, 2000 MACs): the front's one point is (0.1, 0.5, 0.5)
    assert study_hypervolume(study) == pytest.approx(0.9 * 0.5 * 0.5)
    assert {a.path for a in client.list_artifacts(runs["2"].info.run_id)} == {"genotype.json", "model_summary.txt"}

    # A run left half-logged (as by a crash before its end) is finished in place, not duplicated.
    client.update_run(runs["2"].info.run_id, status="RUNNING")
    again = Tracker(study, config, warn=False)
    again.close(study)
    assert (again.error, again.created, again.repaired, again.relabelled) == (None, 0, 1, 0)
    rerun = {r.data.tags.get("trial", "parent"): r for r in client.search_runs([exp.experiment_id])}
    assert rerun.keys() == runs.keys() and rerun["2"].info.run_id == runs["2"].info.run_id
    assert rerun["2"].info.status == "FINISHED"


def _json(url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


@pytest.fixture
def ui_server(tmp_path):
    """`search ui` on a free loopback port; stopped (with its whole process group) afterwards."""
    port = free_port()
    out = open(tmp_path / "ui.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "hwnas.search", "ui", "--port", str(port), "--study", "ui-check"],
                            cwd=ROOT,
                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=5)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "ui.out").read_text()
                time.sleep(0.5)
        yield url, (tmp_path / "ui.out")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


@pytest.fixture(scope="module")
def searched(cli, tmp_path_factory):
    """A short search, logged live to the session's MLflow store; returns its --dir."""
    directory = tmp_path_factory.mktemp("runs")
    r = cli("run", "--trials", "4", "--epochs", "1", "--workers", "1", "--study", "ui-check", "--dir", str(directory),
            "--sampler", "random")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr
    return directory


def _finished(directory) -> dict[int, optuna.trial.FrozenTrial]:
    study = load_study(str(directory), "ui-check")
    return {t.number: t for t in study.trials if t.state.is_finished()}
@pytest.mark.slow
def test_every_trial_is_in_the_mlflow_ui(search_here, searched, ui_server):
    url, out = ui_server
    exp = _json(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=ui-check")["experiment"]
    # the printed link opens the study's runs table (MLflow 3's own first page is its GenAI traces view)
    assert f"at {url}/#/experiments/{exp['experiment_id']}/runs " in out.read_text().splitlines()[0]
    with urllib.request.urlopen(f"{url}/", timeout=30) as page:  # the fragment is the browser's: / serves the app
        assert page.status == 200 and b"<div id=\"root\"" in page.read()
    runs = _json(f"{url}/api/2.0/mlflow/runs/search", {"experiment_ids": [exp["experiment_id"]], "max_results": 100})["runs"]
    tags = lambda run: {t["key"]: t["value"] for t in run["data"].get("tags", [])}
    parents = [r for r in runs if tags(r).get("role") == "study"]
    children = [r for r in runs if tags(r).get("role") == "trial"]
    by_number = _finished(searched)
    assert len(parents) == 1 and len(children) == len(runs) - 1 == len(by_number) >= 4
    assert sorted(int(tags(r)["trial"]) for r in children) == sorted(by_number)
    parent = parents[0]["info"]["run_id"]
    assert "mlflow.parentRunId" not in tags(parents[0])
    study = load_study(str(searched), "ui-check")
    for run in children:
        t = tags(run)
        trial = by_number[int(t["trial"])]
        metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
        params = {p["key"]: p["value"] for p in run["data"]["params"]}
        assert t["mlflow.parentRunId"] == parent and t["state"] == "COMPLETE" and t["sampler"] == "random"
        assert metrics.keys() >= CHILD_METRICS and run["info"]["status"] == "FINISHED"
        assert metrics["latency_ms"] == trial.user_attrs["latency_ms"] and metrics["accuracy"] == trial.values[0]
        assert params["genotype"] == trial.user_attrs["genotype"] and params["recipe.epochs"] == "1"

    front = json.loads(search_here("front", "--study", "ui-check", "--dir", str(searched), "--format", "json").stdout)
    assert front and {int(tags(r)["trial"]) for r in children if tags(r)["pareto"] == "true"} == {
        row["trial"] for row in front}
    assert all(tags(r)["pareto"] in ("true", "false") for r in children)

    files = {f["path"] for f in _json(f"{url}/api/2.0/mlflow/artifacts/list?run_id={parent}")["files"]}
    assert files == {"config.json", "front.csv", "pareto.png", "space.yaml"}
    with urllib.request.urlopen(f"{url}/get-artifact?path=space.yaml&run_uuid={parent}", timeout=30) as r:
        assert r.read().decode() == search_here("spaces", "--show", "mobile").stdout  # the space searched, as a file
    with urllib.request.urlopen(f"{url}/get-artifact?path=front.csv&run_uuid={parent}", timeout=30) as r:
        served = r.read().decode()
    assert served.strip() == search_here("front", "--study", "ui-check", "--dir", str(searched), "--format", "csv").stdout.strip()
    hv = {m["key"]: m["value"] for m in parents[0]["data"]["metrics"]}["hypervolume"]
    assert hv == pytest.approx(study_hypervolume(study)) and 0 < hv < 1
    child = children[0]["info"]["run_id"]
    files = {f["path"] for f in _json(f"{url}/api/2.0/mlflow/artifacts/list?run_id={child}")["files"]}
    assert files == {"genotype.json", "model_summary.txt"}


@pytest.mark.slow
def test_dead_server_then_sync_twice(cli, search_here, searched, mlflow_store):
    from mlflow.tracking import MlflowClient

    before = len(_finished(searched))
    dead = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{free_port()}"}  # nothing listens there
    r = cli("run", "--trials", str(before + 1), "--epochs", "1", "--workers", "1", "--study", "ui-check",
            "--dir", str(searched), "--sampler", "random", env=dead)
    assert r.returncode == 0, r.stderr
    assert f"[{before + 1}/{before + 1}]" in r.stderr and "Traceback" not in r.stderr
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "cannot log to MLflow" in warnings[0] and "search sync" in warnings[0]

    client = MlflowClient(mlflow_store)
    front = {row["trial"] for row in json.loads(
        search_here("front", "--study", "ui-check", "--dir", str(searched), "--format", "json").stdout)}
    seen = []
    for created in (1, 0):  # the new trial's run; then nothing, as every run is found again
        r = search_here("sync", "--study", "ui-check", "--dir", str(searched))
        assert r.returncode == 0 and f"trial runs: {created} created" in r.stderr, r.stderr
        exp = client.get_experiment_by_name("ui-check")
        runs = client.search_runs([exp.experiment_id])
        seen.append(sorted(run.info.run_id for run in runs))
        trials = sorted(int(run.data.tags["trial"]) for run in runs if run.data.tags["role"] == "trial")
        assert trials == sorted(_finished(searched)) and len(trials) == before + 1 and len(runs) == before + 2
        assert {int(run.data.tags["trial"]) for run in runs if run.data.tags.get("pareto") == "true"} == front
    assert seen[0] == seen[1]


@pytest.mark.parametrize("args,fragment", [
    (["sync", "--study", "missing"], "no study 'missing'"),
    (["ui", "--port", "70000"], "--port must be in 1..65535"),
])
def test_bad_input_is_one_line_and_exit_2(search_here, tmp_path, args, fragment):
    r = search_here(*args, *(["--dir", str(tmp_path)] if args[0] == "sync" else []))
    assert r.returncode == 2 and fragment in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []
