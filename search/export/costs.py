"""What an exported member costs in every runtime, measured on this machine: report.json and
report.txt beside the model."""
from __future__ import annotations

import json
import platform
from pathlib import Path

import torch

from hwnas.evaluators.data import Dataset
from hwnas.evaluators.memory import peak_memory_mb
from hwnas.evaluators.metrics import PER_RUNTIME, REGISTRY, Metrics
from hwnas.evaluators.runtimes import (
    RUNTIMES,
    Shipped,
    accuracy_in,
    calibration_images,
    is_int8,
    runtime_costs,
    runtime_problem,
    ship,
)
from hwnas.evaluators.training import accuracy_of
from hwnas.spaces import Network

FIGURES = tuple(REGISTRY[n] for n in PER_RUNTIME)


def shipped_files(model: Network, data: Dataset, runtimes: tuple[str, ...] = RUNTIMES) -> dict[str, Shipped]:
    """The file of ``model`` in each of ``runtimes`` that can run here (int8: calibrated on
    training images)."""
    calibration = calibration_images(data.train)
    return {rt: ship(model, data.input_shape, rt, calibration) for rt in runtimes if runtime_problem(rt) is None}


def measure(model: Network, data: Dataset, files: dict[str, Shipped], threads: int,
            throughput_batch: int) -> dict[str, dict]:
    """Runtime -> its figures (latency, throughput, file size, peak memory, validation accuracy)."""
    rows = {}
    fp32_memory = peak_memory_mb(model, data.input_shape)  # one forward: an int8 element takes a quarter
    for rt, shipped in files.items():
        costs = runtime_costs(model, data.input_shape, shipped, threads, throughput_batch)
        accuracy = (accuracy_of(model, data.val) if rt == "torch"
                    else accuracy_in(shipped.forward(model, threads), data.val))
        memory = fp32_memory / 4 if is_int8(rt) else fp32_memory
        rows[rt] = costs.merged(Metrics(accuracy=accuracy, peak_memory_mb=memory)).values()
    model.eval()
    return rows


def write_report(folder: Path, rows: dict[str, dict], threads: int, throughput_batch: int) -> str:
    """Writes report.json and report.txt; returns the text report's table."""
    machine = {"cpu": platform.processor() or platform.machine(), "system": platform.platform(),
               "torch": torch.__version__, "threads": threads, "throughput_batch": throughput_batch}
    (folder / "report.json").write_text(json.dumps({"machine": machine, "runtimes": rows}, indent=2) + "\n")
    head = ["runtime", *(f"{m.name} ({m.unit})" if m.unit else m.name for m in FIGURES)]
    table = [head] + [[rt, *(m.show(row[m.name]) for m in FIGURES)] for rt, row in rows.items()]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    note = (f"Measured on this machine ({machine['cpu']}, {threads} thread(s), torch {torch.__version__}); "
            f"accuracy on the validation split, throughput at batch {throughput_batch}.")
    (folder / "report.txt").write_text("\n".join([note, "", *lines]) + "\n")
    return "\n".join(lines)
