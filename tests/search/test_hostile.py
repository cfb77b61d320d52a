"""What a careless or hostile user can do to a search, kept fixed: nothing lost, nothing runs away,
one line and a non-zero exit where a traceback was (exit 2: the request; exit 1: the machine or the
trials let the run down)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hwnas.evaluators import TrialSpec
from hwnas.evaluators.data import _read_image, load_folder
from hwnas.search.config import RunConfig
from hwnas.search.errors import RunFailure
from hwnas.search.executors import LocalExecutor
from hwnas.search.loop import run
from hwnas.search.study import journal_path, load_study
from tests.conftest import ROOT


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line(r: subprocess.CompletedProcess, status: int, fragment: str) -> None:
    assert r.returncode == status, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert "Traceback" not in r.stderr and fragment in lines[-1], r.stderr


@pytest.mark.parametrize("seed", ["-1", str(2**70)])
def test_a_seed_out_of_range_is_one_line_and_writes_nothing(search_here, tmp_path, seed):
    r = search_here("run", "--space", "nb201", "--trials", "2", "--seed", seed, "--dir", str(tmp_path))
    _one_line(r, 2, "--seed must be an integer from 0 to 4294967295")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_a_torn_journal_tail_is_set_aside_and_the_study_goes_on(search_here, tmp_path):
    args = ("--space", "nb201", "--study", "s", "--dir", str(tmp_path))
    assert search_here("run", "--trials", "4", *args).returncode == 0
    journal = journal_path(str(tmp_path), "s")
    whole = journal.read_bytes()
    journal.write_bytes(whole[:-60])  # a crash or a full disk in the middle of an append
    again = search_here("run", "--trials", "6", *args)
    assert again.returncode == 0, again.stderr
    assert "were a write cut short" in again.stderr and "set aside in journal.log.torn-" in again.stderr
    # the cut took the last trial's end: in this same process, the new run takes it up (it does not
    # wait for itself)
    assert "trial 3 was left running by a search that did not finish it" in again.stderr, again.stderr
    [aside] = tmp_path.joinpath("s").glob("journal.log.torn-*")
    assert aside.read_bytes() == whole[:-60][whole[:-60].rfind(b"\n") + 1:]  # the partial line, kept
    front = search_here("front", "--study", "s", "--dir", str(tmp_path))
    assert front.returncode == 0, front.stderr
    assert sum(t.state.name == "COMPLETE" for t in load_study(str(tmp_path), "s").trials) == 6


def _always_fails(spec: TrialSpec):
    raise ValueError("Seed must be between 0 and 2**32 - 1")


def test_a_failure_every_trial_hits_stops_the_run(tmp_path):
    config = RunConfig(space="nb201", trials=200, dir=str(tmp_path), study="f")
    with pytest.raises(RunFailure, match=r"20 trials in a row failed \(20 x ValueError: Seed must be"):
        run.run_search(config, LocalExecutor(_always_fails), progress=False, track=False)
    study = load_study(str(tmp_path), "f")
    assert [t.state.name for t in study.trials] == ["FAIL"] * run.FAILURES_IN_A_ROW


def _png16(path: Path, levels: np.ndarray) -> None:
    Image.fromarray(levels.astype(np.uint16)).save(path)


def test_16_bit_grey_images_keep_their_levels(tmp_path):
    levels = np.arange(300, 364, dtype=np.uint16).reshape(8, 8) * 15  # 4500 to 5445: far above 255
    _png16(tmp_path / "a.png", levels)
    read, depth = _read_image(tmp_path / "a.png")
    assert read.shape == (8, 8) and np.array_equal(read, levels) and depth == 65535
    for label in ("dark", "light"):
        (tmp_path / "set" / label).mkdir(parents=True)
        for i in range(6):
            _png16(tmp_path / "set" / label / f"{i}.png", np.full((8, 8), 300 if label == "dark" else 998) + i)
    data = load_folder(str(tmp_path / "set"))
    x = np.concatenate([data.train.images().numpy(), data.val.images().numpy(), data.test.images().numpy()])
    assert x.std() > 0.5  # the two classes stay apart (clipped at 255, every image was white)


def _tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({r.stderr.strip() or r.returncode}): needs root")


@pytest.mark.slow
def test_a_full_disk_ends_the_run_with_one_line_and_a_consistent_study(tmp_path):
    disk = tmp_path / "disk"
    _tmpfs(disk, "400k")
    try:
        args = [sys.executable, "-m", "hwnas.search", "run", "--trials", "20", "--epochs", "1", "--workers", "1",
                "--study", "s", "--dir", str(disk)]
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
        r = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
        _one_line(r, 1, "No space left on device")
        assert not list(disk.rglob("*.tmp")), "a half-written file was left"
        study = load_study(str(disk), "s")
        complete = [t for t in study.trials if t.state.name == "COMPLETE"]
        assert complete and len(complete) < 20
        for t in complete:  # COMPLETE only with what it promises
            assert (disk / "s" / "trials" / str(t.number) / "weights.pt").is_file()
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        more = len(complete) + 2  # free space again: the same study goes on (two trials show it)
        r = subprocess.run([*args[:5], str(more), *args[6:]], cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env=env)
        assert r.returncode == 0, r.stderr
        assert sum(t.state.name == "COMPLETE" for t in load_study(str(disk), "s").trials) == more
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9))


@pytest.mark.parametrize("args,fragment", [
    (["--study", "a b"], "bad study name 'a b'"),
    (["--study", "x\n\x1b[31mred"], "bad study name"),
    (["--study", "../up"], "bad study name '../up'"),
    (["--study", "s" * 300], "(302 characters)"),
    (["--objectives", ""], "--objectives is empty"),
    (["--dataset", " "], "--dataset is empty"),
    (["--config", "BOMB"], "uses YAML aliases"),
    (["--config", "LATIN1"], "is not UTF-8 text"),
    (["--config", "HUGE"], "bytes; a configuration file holds at most 1,000,000"),
    (["--config", "/dev/zero"], "holds more than 1,000,000 bytes"),
    (["--threads", "100000000"], "--threads must be at most 1024"),
    (["--config", "LONG"], "characters cut ...]"),
    (["--epochs", "9" * 100_000], "... (100002 characters) is not an integer of at most 30 digits"),
    (["--dir", "FILE"], "cannot keep study 'nb201' in --dir"),
])
def test_hostile_run_input_is_one_short_line_exit_2_and_changes_nothing(search_here, tmp_path, args, fragment):
    files = {"BOMB": BOMB.encode(), "LATIN1": "trials: 3 # caf\xe9\n".encode("latin-1"),
             "HUGE": b"# " + b"x" * 1_100_000 + b"\ntrials: 3\n", "LONG": b"dataset: " + b"x" * 900_000 + b"\n",
             "FILE": b"a file, not a folder\n"}
    args = [str(tmp_path / a) if a in files else a for a in args]
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    before = _files(tmp_path)
    r = search_here("run", "--space", "nb201", "--trials", "2",
              *(["--dir", str(tmp_path / "runs")] if "--dir" not in args else []), *args)
    _one_line(r, 2, fragment)
    assert len(r.stderr) < 600 and _files(tmp_path) == before


def test_study_names_are_checked_where_a_study_is_read(search_here, tmp_path):
    r = search_here("front", "--study", "../../etc", "--dir", str(tmp_path))
    _one_line(r, 2, "bad study name '../../etc'")


def test_ui_on_a_port_in_use_is_refused(search_here):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        r = search_here("ui", "--port", str(taken.getsockname()[1]))
    _one_line(r, 2, "choose another --port")


def test_export_to_a_place_it_cannot_write_is_refused_before_any_work(search_here, tmp_path):
    import shutil

    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "studies" / "before-hwnas", tmp_path / "before-hwnas")
    (tmp_path / "file").write_text("x")
    r = search_here("export", "--study", "before-hwnas", "--dir", str(tmp_path), "--trial", "1", "--out",
              str(tmp_path / "file" / "model"))
    _one_line(r, 2, "cannot write --out")


@pytest.mark.slow
def test_sync_of_a_study_without_a_complete_trial(cli, tmp_path, mlflow_store):
    from hwnas.search.study import open_study

    study = open_study(RunConfig(space="nb201", study="none-complete", dir=str(tmp_path), sampler="random"))
    trial = study.ask()
    trial.set_user_attr("fail_reason", "ValueError: no")
    study.tell(trial, state=__import__("optuna").trial.TrialState.FAIL)
    r = cli("sync", "--study", "none-complete", "--dir", str(tmp_path))
    assert r.returncode == 0 and "trial runs: 1 created" in r.stderr, r.stderr


def test_exported_code_keeps_outside_text_inert():
    from hwnas.search.export.modelcode import model_source
    from hwnas.spaces import parse

    hostile = 'x"""\nimport os; os.system("echo pwned")  # \\'
    source = model_source(parse("stem_c8_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_relu"), (1, 8, 8), 10, None, hostile)
    namespace: dict = {}
    exec(compile(source, "model.py", "exec"), namespace)  # defines the network, runs nothing else
    assert "import os" in namespace["__doc__"] and "pwned" in namespace["__doc__"] and "os" not in namespace


def _idx_gz(path: Path, dims: tuple[int, ...], body: bytes) -> None:
    import gzip
    import struct

    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + body)


@pytest.mark.parametrize("case,fragment", [
    ("bomb", "needs about 9.0 GB, over the limit"),  # a header declaring 9 GB, a few bytes on disk
    ("short", "holds 100 bytes of data; its header says 10 x 28 x 28"),
    ("corrupt", "cannot read"),
    ("truncated", "cannot read"),
])
def test_idx_files_that_lie_or_break_are_one_line(tmp_path, case, fragment):
    import gzip

    from hwnas.evaluators.data import DataError, read_idx

    path = tmp_path / "x-idx3-ubyte.gz"
    if case == "bomb":
        _idx_gz(path, (90_000, 10_000, 10), b"\0" * 100)
    elif case == "short":
        _idx_gz(path, (10, 28, 28), b"\0" * 100)
    else:
        _idx_gz(path, (10, 28, 28), bytes(range(256)) * 31)
        data = path.read_bytes()
        path.write_bytes(data[:20] + b"\xff" * 40 + data[60:] if case == "corrupt" else data[:len(data) // 2])
    with pytest.raises(DataError, match=fragment):
        read_idx(path)
    assert gzip  # the real reader's own module, not a mock


@pytest.mark.parametrize("content", [b"", b"BM\x00\x01garbage", b"P6\n99999 99999\n255\n\x00", b"GIF89a\x01",
                                     b"\x89PNG\r\n\x1a\n" + b"\x00" * 30])
def test_malformed_images_are_one_line(tmp_path, content):
    from hwnas.evaluators.data import DataError

    (tmp_path / "bad.img").write_bytes(content)
    with pytest.raises(DataError, match="image .*bad.img"):
        _read_image(tmp_path / "bad.img")


def test_a_decompression_bomb_image_is_refused(tmp_path):
    from hwnas.evaluators.data import DataError

    Image.new("1", (12_000, 12_000)).save(tmp_path / "bomb.png")  # 144 M pixels in a few kB
    with pytest.raises(DataError, match="too large to read"):
        _read_image(tmp_path / "bomb.png")


@pytest.mark.parametrize("args,fragment", [
    (["inspect", "stem_c100000_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_relu"], "over the limit of 8 GB"),
    (["inspect", "mobilenet_v2", "--classes", "1000000000"], "over the limit of 8 GB (set HWNAS_MAX_MEMORY_GB"),
    (["inspect", "stem_c8_k999_s1_relu, conv_r1_k3_s2_c16_relu, head_relu"], "odd kernel up to 31"),
    (["inspect", "stem_c99999999999999999999_k3_s1_relu, conv_r1_k3_s2_c16_relu, head_relu"], "is too large"),
    (["run", "--resolution", "100000", "--trials", "1"], "at --resolution 100000 (1,797 images) needs about"),
])
def test_inputs_that_would_allocate_too_much_are_refused_first(search_here, tmp_path, args, fragment):
    r = search_here(*args, *(["--dir", str(tmp_path)] if args[0] == "run" else []))
    _one_line(r, 2, fragment)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", [b"", b"not a pickle", "torch-dict"])
def test_damaged_weights_are_one_line_at_export(search_here, tmp_path, content):
    import shutil

    import torch

    shutil.copytree(Path(__file__).resolve().parents[1] / "data" / "studies" / "before-hwnas", tmp_path / "before-hwnas")
    weights = tmp_path / "before-hwnas" / "trials" / "1" / "weights.pt"
    if content == "torch-dict":
        torch.save({"stem.0.weight": torch.zeros(3)}, weights)  # another network's
    else:
        weights.write_bytes(content)
    r = search_here("export", "--study", "before-hwnas", "--dir", str(tmp_path), "--trial", "1", "--out",
              str(tmp_path / "out"))
    _one_line(r, 2, "do not load into its network")
    assert not (tmp_path / "out").exists()


class _TwoAtOnce:
    """An executor that takes two trials before it evaluates them (as two Ray workers would), in
    this process, counting what it evaluates."""

    capacity, description = 2, "two at once (test)"

    def __init__(self) -> None:
        from hwnas.evaluators import tabular

        self.evaluate, self.pending, self.evaluated = tabular.evaluate, [], []

    def submit(self, spec):
        self.pending.append(spec)

    def wait(self):
        from hwnas.search.executors import run_one

        done = [run_one(spec, self.evaluate) for spec in self.pending]
        self.evaluated += [spec.genotype for spec in self.pending]
        self.pending = []
        return done

    def driver_quiet(self):
        from hwnas.evaluators import quiet

        return quiet.Alone()

    def close(self):
        pass


def test_a_network_drawn_twice_at_once_is_trained_once(tmp_path):
    from hwnas.search.study import open_study

    config = RunConfig(space="nb201", trials=3, dir=str(tmp_path), study="twice", sampler="random")
    study = open_study(config)
    params = {name: "nor_conv_3x3" for name in ("e01", "e02", "e12", "e03", "e13", "e23")}
    for _ in range(3):
        study.enqueue_trial(params, skip_if_exists=False)  # the same network, asked three times
    executor = _TwoAtOnce()
    done = run.run_search(config, executor, progress=False, track=False)
    assert len(executor.evaluated) == 1  # the others waited for its figures
    trials = done.trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [t.user_attrs.get("duplicate_of") for t in trials] == [None, 0, 0]
    assert trials[1].values == trials[0].values
