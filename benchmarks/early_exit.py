"""Early exits on digits: train genotypes with exit heads, calibrate, and print what the exits
save (expected MACs vs full MACs) and cost (accuracy with exits vs full depth); then what timing
the dynamic network costs the other trials (its quiet phase) when every validation input is timed
and when ``TIMED_INPUTS`` of them are, side by side, and how far the two expected latencies lie
apart.

    python benchmarks/early_exit.py [--epochs 10] [--tolerance 0.01] [--repeats 5] [GENOTYPE ...]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwnas.evaluators import Recipe, TrialSpec, evaluate  # noqa: E402
from hwnas.evaluators.early_exit import TIMED_INPUTS, dynamic_run, expected_ms, head_latency_ms  # noqa: E402
from hwnas.evaluators.latency import timing  # noqa: E402
from hwnas.evaluators.timer import DeviceTiming, How  # noqa: E402
from hwnas.evaluators.trial import trial_data  # noqa: E402
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
    p.add_argument("--repeats", type=int, default=5, help="side-by-side timings a genotype (default 5)")
    args = p.parse_args()
    rows, weights = [], []
    for i, g in enumerate(args.genotypes):
        result = evaluate(TrialSpec(i, g, "digits", Recipe(epochs=args.epochs), exit_tolerance=args.tolerance))
        m = result.metrics
        weights.append(result.weights)
        rows.append({"accuracy": m.accuracy, "accuracy_full": m.accuracy_full,
                     "test_accuracy": m.test_accuracy, "test_accuracy_full": m.test_accuracy_full,
                     "threshold": round(m.exit_threshold, 4), "exit_rates": m.exit_rates,
                     "macs": m.macs, "expected_macs": m.expected_macs,
                     "expected/full": round(m.expected_macs / m.macs, 3),
                     "latency_ms": m.latency_ms, "expected_latency_ms": m.expected_latency_ms, "genotype": g})
    print(render(rows, "table"))
    print(f"\nthe dynamic run timed: every validation input once against {TIMED_INPUTS} of them; "
          f"{args.repeats} repeats side by side, 1 thread; medians")
    n = TIMED_INPUTS
    heads = ("every input s", f"{n} inputs s", "every input ms", f"{n} inputs ms", "every spread", f"{n} spread",
             f"{n} / every")
    print(f"{'genotype':>8} " + " ".join(heads))
    for i, (g, w, m) in enumerate(zip(args.genotypes, weights, rows)):
        print(f"{i:>8} " + " ".join(f"{v:>{len(h)}.3f}" for v, h in zip(
            side_by_side(g, w, m["threshold"], args.repeats), heads)))


def side_by_side(genotype: str, weights: bytes, threshold: float, repeats: int) -> tuple[float, ...]:
    """Seconds and expected ms of the two timings of one trained network (medians), each one's ms'
    spread over the repeats (max / min), and the median ratio of their ms."""
    data = trial_data("digits", "", Recipe())
    model = DeviceTiming(genotype, weights, data.input_shape, data.num_classes, How()).model()  # built, loaded
    _, heads = dynamic_run(model, data.val, threshold)
    rates = [float((heads == k).mean()) for k in range(len(model.exits) + 1)]
    out: dict[int, list[tuple[float, float]]] = {0: [], TIMED_INPUTS: []}
    with timing(1):
        for _ in range(repeats):
            for inputs in out:
                start = time.perf_counter()
                ms = expected_ms(head_latency_ms(model, data.val, heads, threshold, inputs=inputs), rates)
                out[inputs].append((time.perf_counter() - start, ms))
    every, sampled = out[0], out[TIMED_INPUTS]
    return (statistics.median(s for s, _ in every), statistics.median(s for s, _ in sampled),
            statistics.median(ms for _, ms in every), statistics.median(ms for _, ms in sampled),
            spread([ms for _, ms in every]), spread([ms for _, ms in sampled]),
            statistics.median(b / a for (_, a), (_, b) in zip(every, sampled)))


def spread(values: list[float]) -> float:
    return max(values) / min(values)


if __name__ == "__main__":
    main()
