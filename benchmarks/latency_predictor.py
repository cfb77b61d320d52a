"""How well the latency model of ``--predict-latency`` ranks networks after 10, 25, 50 and 100
measurements: Spearman of predicted vs measured latency over every network of the test set, and
the share predicted within +-10 %.

- nb201 on each device table in ../shared/data/nb201-devices (and any CSV given with --tables):
  fitted on n random cells, scored on all 15,625.
- mobile here: --networks random networks of the mobile space on digits (1x8x8), each timed
  as a trial times it (drift-proof, this machine is the device); fitted on n, scored on the rest.

Feature sets: "counts" (``Space.cost_features``), "+ costs" (and the counted MACs/parameters:
what the sampler uses), "+ screen" (and the latency a screen times in the search process, for a
table the benchmark's own GPU latency; on mobile here the screen runs on the device itself, so
that row is optimistic). Medians over --seeds draws of the measured networks.

    python benchmarks/latency_predictor.py [--seeds 10] [--networks 150] [--tables a.csv,b.csv]
"""
from __future__ import annotations

import argparse
import glob
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from hwnas.search.samplers.latency_model import LinearLatency  # noqa: E402
from hwnas.spaces import get_space  # noqa: E402

SIZES = (10, 25, 50, 100)
DEVICES = Path(__file__).resolve().parents[2] / "shared" / "data" / "nb201-devices"


def scores(features: np.ndarray, latency: np.ndarray, n: int, seeds: int, held_out: bool) -> tuple[float, float]:
    """Median Spearman and share within +-10 % over ``seeds`` draws of ``n`` measured networks;
    scored on every network, or (``held_out``) on those not measured."""
    rho, within = [], []
    for seed in range(seeds):
        measured = np.random.default_rng(seed).choice(len(latency), n, replace=False)
        scored = np.setdiff1d(np.arange(len(latency)), measured) if held_out else np.arange(len(latency))
        predicted = LinearLatency(features[measured], latency[measured]).predict(features[scored])
        rho.append(spearmanr(predicted, latency[scored]).statistic)
        within.append(float(np.mean(np.abs(predicted / latency[scored] - 1) <= 0.10)))
    return statistics.median(rho), statistics.median(within)


def nb201_cases(tables: list[str]) -> list[tuple[str, dict[str, np.ndarray], np.ndarray]]:
    from hwnas.evaluators.device_table import device_latencies
    from hwnas.evaluators.tabular import load_table

    space, table = get_space("nb201"), load_table("cifar10")
    cells = list(table)
    counts = np.array([_counts(space, c) for c in cells])
    params = np.array([[table[c].params] for c in cells], float)
    gpu = np.array([[table[c].latency_ms] for c in cells], float)
    sets = {"counts": counts, "+ costs": np.hstack([counts, params]), "+ screen": np.hstack([counts, params, gpu])}
    return [(f"nb201 {Path(t).stem}", sets, np.array([device_latencies(t)[c] for c in cells])) for t in tables]


def _counts(space, cell: str) -> list[float]:
    from hwnas.spaces.nb201 import parse_cell

    return space.cost_features(parse_cell(cell))


def mobile_case(networks: int) -> tuple[str, dict[str, np.ndarray], np.ndarray]:
    """Random mobile networks timed as trials time them, and screened as the sampler screens."""
    from hwnas.evaluators.trial import cheap_metrics
    from hwnas.spaces import build

    space, shape = get_space("mobile"), (1, 8, 8)
    rng = np.random.default_rng(0)
    rows, latency, seen = [], [], set()
    while len(latency) < networks:
        params = {n: o[rng.integers(len(o))] for n, o in space.choices().items()}
        genotype = space.decode(params, shape)
        if str(genotype) in seen:
            continue
        seen.add(str(genotype))
        model = build(genotype, shape, 10)
        screened = cheap_metrics(model, shape, "cpu", 1, short=True)
        timed = cheap_metrics(model, shape, "cpu", 1)
        rows.append((space.cost_features(genotype), [screened.macs, screened.params], [screened.latency_ms]))
        latency.append(timed.latency_ms)
        print(f"\rtimed {len(latency)}/{networks} mobile networks", end="", file=sys.stderr)
    print(file=sys.stderr)
    counts = np.array([r[0] for r in rows], float)
    costs = np.hstack([counts, np.array([r[1] for r in rows], float)])
    sets = {"counts": counts, "+ costs": costs, "+ screen": np.hstack([costs, np.array([r[2] for r in rows])])}
    return "mobile (this machine)", sets, np.array(latency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--networks", type=int, default=150, help="mobile networks timed (0: skip mobile)")
    parser.add_argument("--tables", default="", help="device tables, comma-separated (default: shared's)")
    args = parser.parse_args()
    tables = args.tables.split(",") if args.tables else sorted(glob.glob(str(DEVICES / "*.csv")))
    cases = nb201_cases(tables) + ([mobile_case(args.networks)] if args.networks else [])
    print(f"Spearman / share within +-10 % of predicted vs measured latency, median of {args.seeds} draws")
    print(f"{'case':<24} {'features':<9} " + " ".join(f"{'n=' + str(n):>12}" for n in SIZES))
    for name, sets, latency in cases:
        held_out = name.startswith("mobile")
        for label, features in sets.items():
            cells = []
            for n in SIZES:
                if n >= len(latency):
                    cells.append(f"{'-':>12}")
                    continue
                rho, within = scores(features, latency, n, args.seeds, held_out)
                cells.append(f"{rho:>6.3f} / {within:.2f}")
            print(f"{name:<24} {label:<9} " + " ".join(cells))


if __name__ == "__main__":
    main()
