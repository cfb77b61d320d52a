"""--latency-table: a device's latency table (arch,latency_ms for every NAS-Bench-201 cell) is the
nb201 space's latency. The tables here are written by the test (the shared device tables are not
part of the repository); their values differ from the benchmark's own, so reading them shows."""
import csv
import statistics

import pytest

from hwnas.evaluators.tabular import load_table
from hwnas.search.samplers.latency_model import MIN_MEASURED
from hwnas.search.study import load_study


def _write_table(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "latency_ms"])
        w.writerows(rows)


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """A made-up device: latency 1 ms + 10 ms per million parameters (so ranked unlike the table's)."""
    path = tmp_path_factory.mktemp("device") / "board.csv"
    _write_table(path, [(cell, 1.0 + 10 * m.params / 1e6) for cell, m in load_table("cifar10").items()])
    return path


def test_the_device_table_is_the_latency(search_here, tmp_path, device):
    # the default sampler screens every cell on the device's latency
    r = search_here("run", "--space", "nb201", "--trials", "12", "--dir", str(tmp_path), "--latency-table",
              str(device))
    assert r.returncode == 0, r.stderr
    assert f"latency of {device}" in r.stderr
    table = load_table("cifar10")
    for t in load_study(str(tmp_path), "nb201").trials:
        cell = t.user_attrs["genotype"]
        assert t.user_attrs["latency_ms"] == pytest.approx(1.0 + 10 * table[cell].params / 1e6)
        assert t.user_attrs["latency_ms"] != pytest.approx(table[cell].latency_ms)
        assert t.user_attrs["latency_runtime"] == "table board.csv"
    # another device is another study's latency: continuing with it is refused
    other = tmp_path / "other.csv"
    _write_table(other, [(cell, 2.0) for cell in table])
    r = search_here("run", "--space", "nb201", "--trials", "13", "--dir", str(tmp_path), "--latency-table", str(other))
    assert r.returncode == 2 and "latency_table=" in r.stderr


def test_a_predicted_device_is_read_for_the_trials_only(search_here, tmp_path, device):
    """--predict-latency: the sampler screens on a model fitted on the cells timed so far; each
    trial records what it predicted and its error against the device (here linear in the
    parameters, which the model reads: found within 1 %, as a median)."""
    r = search_here("run", "--space", "nb201", "--trials", "14", "--dir", str(tmp_path), "--latency-table",
              str(device), "--predict-latency", "--study", "p")
    assert r.returncode == 0, r.stderr
    assert "predicted, read for trials only" in r.stderr
    trials = load_study(str(tmp_path), "p").trials
    predicted = [t for t in trials if "latency_predicted_ms" in t.user_attrs]
    # no model before MIN_MEASURED cells were timed; a prediction for every trial after
    assert [t.number for t in predicted] == list(range(MIN_MEASURED, 14))
    errors = [t.user_attrs["latency_prediction_error"] for t in predicted]
    for t, error in zip(predicted, errors):
        assert error == pytest.approx(t.user_attrs["latency_predicted_ms"] / t.user_attrs["latency_ms"] - 1)
    assert statistics.median(abs(e) for e in errors) < 0.01, errors
    front = search_here("front", "--dir", str(tmp_path), "--study", "p")
    assert "latency_prediction_error" in front.stdout.splitlines()[0]
    # a sampler that does not screen, or no device to predict: one line, exit 2
    r = search_here("run", "--space", "nb201", "--trials", "3", "--dir", str(tmp_path), "--latency-table",
              str(device), "--predict-latency", "--sampler", "random", "--study", "q")
    assert r.returncode == 2 and "sampler random does not screen" in r.stderr
    r = search_here("run", "--space", "nb201", "--trials", "3", "--dir", str(tmp_path), "--predict-latency",
              "--study", "q")
    assert r.returncode == 2 and "--predict-latency predicts a device's latency" in r.stderr
    assert not (tmp_path / "q").exists()


@pytest.mark.parametrize("content,fragment", [
    (None, "cannot read --latency-table"),
    ("arch,ms\n", "must start with the header arch,latency_ms"),
    ("arch,latency_ms\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\n", "holds 1 cells; the device must"),
    ("arch,latency_ms\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,-1\n", "line 2: latency_ms must be a positive"),
    ("arch,latency_ms\nnot a cell,1.0\n", "line 2: not arch,latency_ms"),
    ("\x00\xff\xfe", "is not a CSV text file"),
])
def test_a_bad_table_is_one_line_and_writes_nothing(search_here, tmp_path, content, fragment):
    path = tmp_path / "t.csv"
    if content is not None:
        path.write_bytes(content.encode("latin-1"))
    runs = tmp_path / "runs"
    r = search_here("run", "--space", "nb201", "--trials", "3", "--dir", str(runs), "--latency-table", str(path))
    assert r.returncode == 2 and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not runs.exists()


def test_a_trained_space_has_no_latency_table(search_here, tmp_path, device):
    r = search_here("run", "--dir", str(tmp_path), "--latency-table", str(device))
    assert r.returncode == 2 and "--latency-table applies to table spaces (nb201)" in r.stderr
