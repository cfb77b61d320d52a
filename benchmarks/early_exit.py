"""Early exits on digits: train genotypes with exit heads, calibrate, and print what the exits
save (expected MACs vs full MACs) and cost (accuracy with exits vs full depth).

    python benchmarks/early_exit.py [--epochs 10] [--tolerance 0.01] [GENOTYPE ...]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.evaluators import Recipe, TrialSpec, evaluate  # noqa: E402
from hwnas.search.report import render  # noqa: E402

GENOTYPES = (
    "stem_c16_k3_s1_relu, conv_r1_k3_s1_c16_relu, ds_r1_k3_s2_c24_relu, exit_c32_relu, "
    "ir_r3_k3_s2_e6_c48_relu, ir_r3_k3_s1_e6_c64_relu, head_c256_relu",
    "stem_c16_k3_s1_relu, conv_r1_k3_s1_c16_relu, ds_r1_k3_s2_c24_relu, exit_c32_relu, "
    "ir_r3_k3_s2_e6_c48_relu, exit_c32_relu, ir_r3_k3_s1_e6_c64_relu, head_c256_relu",
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("genotypes", nargs="*", default=GENOTYPES)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--tolerance", type=float, default=0.01)
    args = p.parse_args()
    rows = []
    for i, g in enumerate(args.genotypes):
        m = evaluate(TrialSpec(i, g, "digits", Recipe(epochs=args.epochs), exit_tolerance=args.tolerance)).metrics
        rows.append({"accuracy": m.accuracy, "accuracy_full": m.accuracy_full,
                     "test_accuracy": m.test_accuracy, "test_accuracy_full": m.test_accuracy_full,
                     "threshold": round(m.exit_threshold, 4), "exit_rates": m.exit_rates,
                     "macs": m.macs, "expected_macs": m.expected_macs,
                     "expected/full": round(m.expected_macs / m.macs, 3),
                     "latency_ms": m.latency_ms, "expected_latency_ms": m.expected_latency_ms, "genotype": g})
    print(render(rows, "table"))


if __name__ == "__main__":
    main()
