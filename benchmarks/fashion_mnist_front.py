"""The Fashion-MNIST check: a short search whose front should hold a member with test accuracy
>= 0.90 and fewer MACs than the TensorFlow tutorial net (13.9 M MACs,
0.916 test accuracy, as the Fashion-MNIST benchmark lists it).

The study's first trial is a hand-picked plain 6-conv genotype (enqueued, ~6.9 M MACs); the rest are
sampled. Prints the front. On a shared 2-core CPU run it as

    OMP_NUM_THREADS=1 python benchmarks/fashion_mnist_front.py [--trials 4] [--dir runs]

(trial 0 took 2:43 there; sampled inverted-residual nets at 28x28 can take 20+ minutes each).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hwnas.evaluators import evaluation_for  # noqa: E402
from hwnas.search.cli import parser  # noqa: E402
from hwnas.search.config import config_from_args  # noqa: E402
from hwnas.search.loop import run_search  # noqa: E402
from hwnas.search.pareto import front_rows  # noqa: E402
from hwnas.search.report import render  # noqa: E402
from hwnas.search.samplers.hybrid import screen_for  # noqa: E402
from hwnas.search.study import open_study  # noqa: E402
from hwnas.spaces import get_space  # noqa: E402

OPTIONS = ["--dataset", "fashion-mnist", "--train-subset", "40000", "--epochs", "3", "--batch-size", "128",
           "--no-augment", "--trials", "4", "--study", "fmnist"]
# stem_c16_k3_s1_relu, conv_r1_k3_s1_c16_relu, conv_r2_k3_s2_c32_relu, conv_r2_k3_s2_c48_relu,
# conv_r1_k3_s2_c64_relu, head_c128_relu
SEED_PARAMS = {"stem_width": 16, "act": "relu", "head_width": 128}
for i, (depth, width) in enumerate([(1, 16), (2, 32), (2, 48), (1, 64)]):
    SEED_PARAMS.update({f"s{i}_depth": depth, f"s{i}_width": width, f"s{i}_kind": "conv", f"s{i}_kernel": 3,
                        f"s{i}_expansion": 2, f"s{i}_se": 0.0})


def main() -> None:
    config = config_from_args(parser().parse_args(["run", *OPTIONS, *sys.argv[1:]]))
    space = get_space(config.space)
    evaluation = evaluation_for(space.evaluated, config.dataset, config.data_dir, config.recipe(), config.device)
    study = open_study(config, screen_for(space, evaluation))  # the default sampler screens candidates
    if not study.trials:
        study.enqueue_trial(SEED_PARAMS)
    print(render(front_rows(run_search(config)), "table"))


if __name__ == "__main__":
    main()
