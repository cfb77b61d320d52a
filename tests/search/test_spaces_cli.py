"""A user's own space, end to end with the real `search` command: the worked example's file,
read from docs/spaces.md, searched and exported; a changed file refused; bad files one line."""
import json
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains networks

DOC = Path(__file__).resolve().parents[2] / "docs" / "spaces.md"


def example_file() -> str:
    """The YAML block of the docs' worked example, as a user would copy it."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    return next(b for b in blocks if "name: small_digits" in b)


def test_the_docs_example_space_searches_and_exports(search_here, tmp_path):
    space = tmp_path / "small_digits.yaml"
    space.write_text(example_file())
    runs = str(tmp_path / "runs")
    r = search_here("run", "--space", str(space), "--trials", "5", "--epochs", "2", "--workers", "1", "--dir", runs)
    assert r.returncode == 0, r.stderr
    assert re.search(r"done: 5 (complete trials|trials ended \(\d trained, \d stopped early\)) in", r.stderr), r.stderr
    front = json.loads(search_here("front", "--study", "small_digits", "--dir", runs, "--format", "json").stdout)
    # the study remembers the space: a changed file is refused, naming the change, and nothing is run
    space.write_text(example_file().replace("widths: [32, 48]", "widths: [32, 64]"))
    r = search_here("run", "--space", str(space), "--trials", "6", "--epochs", "2", "--workers", "1", "--dir", runs)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "began with another space" in r.stderr and "stages[2].widths [32, 48] -> [32, 64]" in r.stderr
    # a member exports, also with the file moved away: the study's own copy of the space is read
    space.unlink()
    r = search_here("export", "--study", "small_digits", "--dir", runs, "--out", str(tmp_path / "out"), "--no-report")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "out" / "metadata.json").read_text())
    assert meta["genotype"] in {row["genotype"] for row in front} and (tmp_path / "out" / "model.onnx").is_file()


@pytest.mark.parametrize("text,fragment", [
    ("activations: [relu]\nstem: {widths: [8], stride: 2}\nstages: [{widths: [8], stride: 2}, {widths: [8], stride: 2}, "
     "{widths: [8], stride: 2}]\n", "has 4 stride-2 steps (16x downsampling), more than a 8x8 input allows (at most 3)"),
    ("stages: [\n", "is not YAML"),
])
def test_bad_space_files_stop_the_run_with_one_line(search_here, tmp_path, text, fragment):
    (tmp_path / "bad.yaml").write_text(text)
    r = search_here("run", "--space", str(tmp_path / "bad.yaml"), "--trials", "2", "--dir", str(tmp_path / "runs"))
    assert r.returncode == 2 and fragment in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "runs").exists()
