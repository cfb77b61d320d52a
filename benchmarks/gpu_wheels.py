"""The wheels benchmarks/gpu_check.py needs on the lent GPU machine, where nothing can be fetched:

    python benchmarks/gpu_wheels.py [--dir .whl]

Downloads, for that machine's Python (3.12, x86-64 Linux), the packages its image lacks (its
package list: ../.library/device/KINDS.md) at the versions installed here, and trims Ray's wheel to
what a local Ray of trials uses (out: its Java jars, the dashboard's web client, and the data,
serve, rllib and llm libraries; 76 -> 39 MiB), so that the working tree with them stays under the
64 MiB that travels. Add the folder to .git/info/exclude (it does not belong in the repository),
then on the machine run benchmarks/gpu_device.sh with the folder carried (docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

# missing from the GPU machine's image: Optuna and Ray, and what they import there
PACKAGES = ("ray", "optuna", "colorlog", "jsonschema", "jsonschema-specifications", "referencing", "rpds-py",
            "wcwidth")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")
RAY_UNUSED = ("ray/jars/", "ray/dashboard/client/", "ray/data/", "ray/serve/", "ray/rllib/", "ray/llm/")


def download(folder: Path) -> None:
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in PACKAGES]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(folder), *pins],
                   check=True)


def trim(wheel: Path) -> None:
    """Rewrites ``wheel`` without the members under RAY_UNUSED (its RECORD still lists them: pip
    installs what the archive holds)."""
    kept = wheel.with_suffix(".part")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(kept, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if not info.filename.startswith(RAY_UNUSED):
                dst.writestr(info, src.read(info))
    kept.replace(wheel)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=".whl", help="where the wheels go (default .whl)")
    folder = Path(parser.parse_args().dir)
    folder.mkdir(exist_ok=True)
    download(folder)
    for wheel in folder.glob("ray-*.whl"):
        before = wheel.stat().st_size
        trim(wheel)
        print(f"{wheel.name}: {before / 2**20:.0f} -> {wheel.stat().st_size / 2**20:.0f} MiB", file=sys.stderr)
    total = sum(w.stat().st_size for w in folder.glob("*.whl"))
    print(f"{folder}: {len(list(folder.glob('*.whl')))} wheels, {total / 2**20:.0f} MiB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
