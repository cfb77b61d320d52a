"""What a real data set costs a node in memory: `search run --dataset folder:DIR` on a folder of
real images (Fashion-MNIST's training images written as PNG files, one sub-folder per class),
with 1 worker (the search's own process) and 2 (a local Ray), the node's data cache cold (the
folder decoded) and warm (the next run). Prints the peak of the node's memory, summed over the
search's processes as proportional set size (a page shared by n processes counts 1/n in each: a
memory-mapped data set counts once), the largest process's peak resident size, and wall time.

    python benchmarks/data_memory.py [--images 50000] [--cifar-sized] [--workers 1 2] [--trials 2]
        [--dir DIR] [--code DIR] [--label before]

--code DIR measures another checkout of this repository (a `git worktree` of an older commit:
the "before" rows); its processes import hwnas from there. The runs train briefly (1 epoch on
--train-subset images): what is measured is holding the data set, not training.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("search", "spaces", "evaluators")  # hwnas.<name> is the repository's folder <name>


def write_folder(root: Path, images: int, cifar_sized: bool) -> None:
    """The first ``images`` Fashion-MNIST training images as 8-bit PNGs in root/<class>/ (with
    ``cifar_sized``: padded to 32 x 32 and written as RGB, CIFAR-10's shape and bytes)."""
    import numpy as np
    from PIL import Image

    from hwnas.evaluators.data import FASHION_MNIST_DIR, read_idx

    if (root / "done").is_file():
        return
    x = read_idx(Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz"))[:images]
    y = read_idx(Path(FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz"))[:images]
    for label in np.unique(y):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(x, y)):
        if cifar_sized:
            image = np.repeat(np.pad(image, 2)[:, :, None], 3, axis=2)
        Image.fromarray(image, "RGB" if cifar_sized else "L").save(root / f"class{label}" / f"{i:05d}.png")
    (root / "done").write_text("")


def _children(pid: int) -> set[int]:
    """pid and every process descended from it (a local Ray's raylet and workers included)."""
    parents: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        out.add(p)
        todo += parents.get(p, [])
    return out


def _memory_kb(pid: int) -> tuple[int, int]:
    """(proportional set size, resident set size) of one process, in kB; zeros when it is gone."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
        return int(fields["Pss"].split()[0]), int(fields["Rss"].split()[0])
    except (OSError, KeyError, ValueError):
        return 0, 0


def measure(command: list[str], env: dict, cwd: Path) -> tuple[float, float, float, str]:
    """Run ``command``; sample its processes every 0.1 s. (Peak node PSS MB, peak largest RSS MB,
    wall s, its stderr's last line.)"""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peaks = [0, 0]
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr or []), daemon=True)
    reader.start()
    while proc.poll() is None:
        sizes = [_memory_kb(p) for p in _children(proc.pid)]
        peaks[0] = max(peaks[0], sum(s[0] for s in sizes))
        peaks[1] = max(peaks[1], max((s[1] for s in sizes), default=0))
        time.sleep(0.1)
    reader.join(5)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"data_memory: the search failed ({proc.returncode}): {''.join(err[-5:])}")
    return peaks[0] / 1024, peaks[1] / 1024, wall, (err[-1].strip() if err else "")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=50_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--trials", type=int, default=2, help="trials per worker")
    p.add_argument("--train-subset", type=int, default=500)
    p.add_argument("--cifar-sized", action="store_true", help="the images padded to 32 x 32 and written as RGB")
    p.add_argument("--dir", help="keeps the image folder (written once) and the runs")
    p.add_argument("--code", help="another checkout of this repository to measure (default: this one)")
    p.add_argument("--label", default="", help="the rows' label (default: this checkout's commit)")
    args = p.parse_args()
    work = Path(args.dir or tempfile.mkdtemp(prefix="data-memory-"))
    folder = work / f"fashion-mnist-{args.images}{'-32x32-rgb' if args.cifar_sized else ''}"
    print(f"writing {args.images:,} Fashion-MNIST images as PNG to {folder} (once)", file=sys.stderr)
    write_folder(folder, args.images, args.cifar_sized)
    code = Path(args.code or ROOT).resolve()
    env = dict(os.environ)
    if args.code:  # an import path where hwnas.<name> is that checkout's folder <name>
        shim = work / f"code-{code.name}" / "hwnas"
        shim.mkdir(parents=True, exist_ok=True)
        for name in PACKAGES:
            if not (shim / name).exists():
                (shim / name).symlink_to(code / name)
        env["PYTHONPATH"] = str(shim.parent)
    label = args.label or subprocess.run(["git", "-C", str(code), "rev-parse", "--short", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()
    cache = Path(tempfile.mkdtemp(prefix="cache-", dir=work))  # cold at first: this benchmark's own node cache
    runs = Path(tempfile.mkdtemp(prefix="runs-", dir=work))  # new studies: every run trains its trials
    env.update(HWNAS_CACHE=str(cache), MLFLOW_TRACKING_URI=f"sqlite:///{work / 'mlflow.db'}")
    rows = []
    for workers in args.workers:
        for run in ("cold", "warm"):
            study = f"{workers}-workers-{run}"
            command = [sys.executable, "-m", "hwnas.search", "run", "--space", "mobile", "--dataset",
                       f"folder:{folder}", "--epochs", "1", "--train-subset", str(args.train_subset),
                       "--trials", str(args.trials * workers), "--workers", str(workers), "--sampler", "random",
                       "--dir", str(runs), "--study", study]
            if run == "cold":
                for entry in (cache / "data").glob("*"):  # decode again: the folder's entry goes
                    subprocess.run(["rm", "-rf", str(entry)], check=True)
            pss, rss, wall, last = measure(command, env, work)
            rows.append((label, workers, run, pss, rss, wall))
            print(f"  {label} {workers} worker(s), cache {run}: {pss:.0f} MB, {wall:.0f} s ({last})", file=sys.stderr)
    shape, size = ("32x32 RGB", 3 * 32 * 32) if args.cifar_sized else ("28x28 grey", 28 * 28)
    print(f"\n{args.images:,} Fashion-MNIST images ({shape} PNG, {args.images * size / 2**20:.0f} MB as uint8), "
          f"search run --dataset folder:DIR, {args.trials} trials per worker, 1 epoch on {args.train_subset} images")
    header = f"{'code':<10} {'workers':>7} {'cache':<5} {'peak node MB (PSS)':>18} {'largest process MB (RSS)':>24} " \
             f"{'wall s':>6}"
    print(header)
    print("-" * len(header))
    for label, workers, run, pss, rss, wall in rows:
        print(f"{label:<10} {workers:>7} {run:<5} {pss:>18.0f} {rss:>24.0f} {wall:>6.0f}")


if __name__ == "__main__":
    main()
