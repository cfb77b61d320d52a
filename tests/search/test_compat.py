"""A study written by the version before the hwnas package (top-level `search`, every metric stored
twice) opens, continues and exports. tests/data/studies/before-hwnas was made by commit 9d11eda:
`search run --trials 4 --epochs 1 --workers 1 --exits --study before-hwnas` (weights of trial 1 kept)."""
import json
import shutil
from pathlib import Path

import pytest

from hwnas.evaluators.metrics import Metrics
from hwnas.search.study import load_study

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "studies" / "before-hwnas"


@pytest.mark.slow
def test_a_study_of_the_previous_version_opens_continues_and_exports(tmp_path, search_here):
    shutil.copytree(FIXTURE, tmp_path / "before-hwnas")
    old = load_study(str(tmp_path), "before-hwnas")
    assert "metrics" in old.trials[0].user_attrs  # the old layout: a dict beside one attribute per metric
    front = json.loads(search_here("front", "--study", "before-hwnas", "--dir", str(tmp_path), "--format", "json").stdout)
    assert {row["trial"] for row in front} == {t.number for t in old.best_trials}
    assert all(row["exits"] >= 1 and len(row["exit_rates"]) == row["exits"] + 1 for row in front)

    run = search_here("run", "--trials", "6", "--epochs", "1", "--workers", "1", "--exits", "--study", "before-hwnas",
                      "--dir", str(tmp_path))
    assert run.returncode == 0, run.stderr
    study = load_study(str(tmp_path), "before-hwnas")
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 6
    for t in complete[4:]:  # new trials: each figure once, none in a `metrics` dict
        assert "metrics" not in t.user_attrs and Metrics.from_attrs(t.user_attrs).exit_rates is not None
    assert Metrics.from_attrs(complete[0].user_attrs) == Metrics(**complete[0].user_attrs["metrics"])

    out = search_here("export", "--study", "before-hwnas", "--dir", str(tmp_path), "--trial", "1", "--out",
              str(tmp_path / "exported"), "--no-report")
    assert out.returncode == 0, out.stderr
    assert "trial 1's trained weights" in out.stdout
    metadata = json.loads((tmp_path / "exported" / "metadata.json").read_text())
    assert metadata["metrics"]["accuracy"] == old.trials[1].user_attrs["metrics"]["accuracy"]
    assert (tmp_path / "exported" / "model.py").is_file() and (tmp_path / "exported" / "model.onnx").is_file()
