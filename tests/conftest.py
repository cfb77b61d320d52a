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
