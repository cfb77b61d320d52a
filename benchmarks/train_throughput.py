"""Training throughput (images/s) of an inverted-residual and a plain-conv net on 28x28 grey input,
by thread count and memory format. Prints a table; on a shared machine say how loaded it was.

    python benchmarks/train_throughput.py [--batches 6] [--batch-size 128]
"""
from __future__ import annotations

import argparse
import os
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--batch-size", type=int, default=128)
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


if __name__ == "__main__":
    main()
