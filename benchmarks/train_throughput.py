"""Training throughput (images/s) of an inverted-residual and a plain-conv net on 28x28 grey input,
by thread count and memory format; then AdamW's update as the CPU trains (a loop over the
parameters) against the fused one a GPU trains with, on the real trainer. Prints two tables; on a
shared machine say how loaded it was.

    python benchmarks/train_throughput.py [--batches 6] [--batch-size 128] [--networks 4] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from hwnas.search.report import render  # noqa: E402
from hwnas.spaces import build, parse  # noqa: E402

NETS = {
    "ir": "stem_c16_k3_s1_relu, ds_r1_k3_s1_c16_relu, ir_r2_k3_s2_e4_c32_relu, ir_r2_k3_s2_e4_c48_relu, "
          "ir_r2_k3_s2_e4_c64_relu, head_c128_relu",
    "conv": "stem_c16_k3_s1_relu, conv_r1_k3_s1_c16_relu, conv_r2_k3_s2_c32_relu, conv_r2_k3_s2_c48_relu, "
            "conv_r1_k3_s2_c64_relu, head_c128_relu",
}


def throughput(genotype: str, threads: int, channels_last: bool, batches: int, batch_size: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build(parse(genotype), (1, 28, 28), 10).to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters())
    x, y = torch.randn(batch_size, 1, 28, 28).contiguous(memory_format=fmt), torch.randint(0, 10, (batch_size,))

    def step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(batches):
        step()
    return batches * batch_size / (time.perf_counter() - t0)


def adamw_rows(networks: int, repeats: int) -> list[dict]:
    """Two epochs of ``networks`` random mobile-space networks on digits (evaluators.training's
    Trainer, one thread, augmentation on), AdamW's update as a loop and fused, timed side by side
    ``repeats`` times: each one's seconds, and the fused over the loop's (median of the pairs)."""
    from hwnas.evaluators import Recipe
    from hwnas.evaluators.data import crop_flip
    from hwnas.evaluators.training import Trainer
    from hwnas.evaluators.trial import trial_data
    from hwnas.spaces import get_space

    torch.set_num_threads(1)
    data = trial_data("digits", "", Recipe())
    space, rng = get_space("mobile"), random.Random(0)
    nets = [space.decode({n: rng.choice(o) for n, o in space.choices().items()}, data.input_shape)
            for _ in range(networks)]

    def seconds(genotype, fused: bool) -> float:
        torch.manual_seed(0)
        model = build(genotype, data.input_shape, data.num_classes)
        trainer = Trainer(model, Recipe(epochs=2), len(data.train), fused=fused)  # fused: as on a GPU
        t0 = time.perf_counter()
        for _ in range(2):
            trainer.train_epoch(data.train, crop_flip)
        return time.perf_counter() - t0

    loop, fused = [], []
    for _ in range(repeats):
        for g in nets:
            loop.append(seconds(g, False))
            fused.append(seconds(g, True))
    ratio = statistics.median(f / t for f, t in zip(fused, loop))
    return [{"adamw": "loop (the CPU's)", "pairs": len(loop), "seconds": f"{sum(loop):.2f}", "vs loop": "1.000"},
            {"adamw": "fused (a GPU's)", "pairs": len(fused), "seconds": f"{sum(fused):.2f}",
             "vs loop": f"{ratio:.3f}"}]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--networks", type=int, default=4, help="networks for the AdamW table (default 4)")
    p.add_argument("--repeats", type=int, default=3, help="times each is trained both ways (default 3)")
    args = p.parse_args()
    load = os.getloadavg()[0]
    rows = []
    for threads in (1, 2):
        for name, genotype in NETS.items():
            for cl in (False, True):
                rows.append({"net": name, "threads": threads, "channels_last": cl,
                             "images_per_s": round(throughput(genotype, threads, cl, args.batches, args.batch_size))})
    print(f"load average at start: {load:.1f} on {os.cpu_count()} cores")
    print(render(rows, "table"))
    print("\nAdamW's update, 2 epochs of random mobile networks on digits, 1 thread "
          "('vs loop': median of the pairs' ratios)")
    print(render(adamw_rows(args.networks, args.repeats), "table"))


if __name__ == "__main__":
    main()
