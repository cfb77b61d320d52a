import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, env: dict | None = None):
    """Run the real `search` command in a fresh process; return the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "hwnas.search", *args], cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def cli():
    return run_cli


@pytest.fixture
def search_here(capsys):
    """The real `search` command run in this process (its ``main``), returned as a finished
    process: for input it refuses before any work, where a fresh interpreter would cost ~2 s of
    start-up and imports a call. A full run goes through ``cli`` (Ray, signals, a clean process)."""
    from hwnas.search.cli import main

    def run(*argv: str) -> subprocess.CompletedProcess:
        try:
            status = main(list(argv))
        except SystemExit as e:  # argparse's refusals exit
            status = e.code if isinstance(e.code, int) else 1
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["search", *argv], status, out, err)

    return run


@pytest.fixture(scope="session", autouse=True)
def latency_anchors(tmp_path_factory):
    """The reference network's anchors (evaluators.reference) in a throwaway folder: calibrated
    once for the session, shared by its processes, never the user's ~/.cache."""
    before = os.environ.get("HWNAS_CACHE")
    os.environ["HWNAS_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield os.environ["HWNAS_CACHE"]
    if before is None:
        os.environ.pop("HWNAS_CACHE", None)
    else:
        os.environ["HWNAS_CACHE"] = before


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory):
    """Every test logs to one throwaway MLflow store (never the repository's mlflow/); one store
    for the session, because creating its database takes seconds. Returns its tracking URI."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    before = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


NO_CUDA = "not run: no CUDA device here (benchmarks/gpu_check.py runs the cuda tests on a GPU machine)"


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` need a GPU: where there is none they are skipped with the reason, and
    the summary says they did not run (a skip is never a pass)."""
    import torch

    if torch.cuda.is_available():
        return
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=NO_CUDA))


def pytest_terminal_summary(terminalreporter):
    not_run = [r for r in terminalreporter.stats.get("skipped", []) if NO_CUDA in str(r.longrepr)]
    if not_run:
        terminalreporter.write_line(f"cuda: {len(not_run)} tests NOT RUN (no CUDA device here); "
                                    f"they are not counted as passed", yellow=True, bold=True)
