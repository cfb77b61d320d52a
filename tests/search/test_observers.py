"""Observers of told trials: the front files beside a study, and MLflow logging from what the
told trials carry (no data set needed)."""
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwnas.search.pareto import front_figure, front_rows
from hwnas.search.report import render
from hwnas.search.study import load_study


def _folder_dataset(root: Path) -> Path:
    """Two classes of 8x8 grey images (bright top vs bright bottom): learnable in an epoch."""
    rng = np.random.default_rng(0)
    for label in ("top", "bottom"):
        (root / label).mkdir(parents=True)
        for i in range(12):
            x = rng.integers(0, 60, (8, 8)).astype(np.uint8)
            x[:4 if label == "top" else 8, :] += 150 if label == "top" else 0
            x[4:, :] += 150 if label == "bottom" else 0
            Image.fromarray(x).save(root / label / f"{i}.png")
    return root


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@pytest.mark.slow
def test_front_files_follow_the_study_and_sync_needs_no_data(tmp_path, cli, search_here):
    data = _folder_dataset(tmp_path / "images")
    run = search_here("run", "--dataset", f"folder:{data}", "--trials", "3", "--epochs", "1", "--workers", "1",
                      "--sampler", "random", "--study", "obs", "--dir", str(tmp_path / "runs"))
    assert run.returncode == 0, run.stderr
    folder = tmp_path / "runs" / "obs"
    study = load_study(str(tmp_path / "runs"), "obs")
    # the CSV is what `search front --format csv` prints; the plot is a real PNG
    front = search_here("front", "--study", "obs", "--dir", str(tmp_path / "runs"), "--format", "csv")
    assert (folder / "front.csv").read_text() == front.stdout
    assert (folder / "front.csv").read_text() == render(front_rows(study), "csv") + "\n"
    assert _png_size(folder / "pareto.png") == (1000, 400)  # two panels, 5 x 4 inches each, 100 dpi
    assert not list(folder.glob(".*.tmp"))

    # the data set is gone: a fresh MLflow store still gets every trial, complete
    shutil.rmtree(data)
    uri = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    sync = cli("sync", "--study", "obs", "--dir", str(tmp_path / "runs"), env={"MLFLOW_TRACKING_URI": uri})
    assert sync.returncode == 0 and "trial runs: 3 created, 0 repaired" in sync.stderr, sync.stderr
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("obs")
    runs = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags["role"] == "trial"]
    assert len(runs) == 3
    for r in runs:
        trial = study.trials[int(r.data.tags["trial"])]
        assert r.info.status == "FINISHED" and r.data.metrics["accuracy"] == trial.user_attrs["accuracy"]
        assert {a.path for a in client.list_artifacts(r.info.run_id)} == {"genotype.json", "model_summary.txt"}
        summary = Path(client.download_artifacts(r.info.run_id, "model_summary.txt", str(tmp_path))).read_text()
        assert summary == trial.user_attrs["model_summary"]  # built in the worker, carried by the trial
        assert summary.startswith(f"genotype: {trial.user_attrs['genotype']}\ninput: 1x8x8, classes: 2")
        document = json.loads(Path(client.download_artifacts(r.info.run_id, "genotype.json", str(tmp_path))).read_text())
        assert document["text"] == trial.user_attrs["genotype"] and len(document["stages"]) == 4


def test_the_plot_labels_log_axes_with_plain_numbers(tmp_path):
    import optuna

    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    study.set_metric_names(["accuracy", "latency_ms", "macs"])
    for acc, lat, macs in ((0.9, 0.3, 40_000), (0.95, 0.45, 200_000), (0.97, 3.1, 900_000)):
        study.add_trial(optuna.trial.create_trial(values=[acc, lat, macs], user_attrs={"accuracy": acc}))
    fig = front_figure(study, {t.number for t in study.best_trials})
    fig.canvas.draw()
    latency, macs = fig.axes
    for ax in (latency, macs):
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert len(labels) >= 3 and all(float(label) > 0 for label in labels), labels  # no 3x10^0
    assert [t.get_text() for t in latency.get_xticklabels()] == ["0.5", "1", "2"]
    assert macs.get_xlabel() == "macs (M)" and "0.05" in [t.get_text() for t in macs.get_xticklabels()]


def test_front_files_that_cannot_be_written_warn_once_and_do_not_stop_the_search(tmp_path):
    import io

    import optuna

    from hwnas.search.observers import FrontFiles

    study = optuna.create_study(directions=["maximize", "minimize"])
    study.set_metric_names(["accuracy", "latency_ms"])
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    stream = io.StringIO()
    files = FrontFiles(blocked, stream)
    for acc in (0.5, 0.6):
        study.add_trial(optuna.trial.create_trial(values=[acc, 1.0]))
        files(study, study.trials[-1])
    files.close(study, completed=True)
    assert files.error and stream.getvalue().count("warning: cannot write the front files") == 1
    assert blocked.read_text() == "not a folder"
