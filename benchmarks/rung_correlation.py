"""Does a trial's accuracy at a rung rank networks as their final accuracy does? Trains random
networks of a space under two schedules and prints, for each rung, the Spearman correlation of
validation accuracy at the rung with accuracy at the end, and the mean final accuracy; and the
same for the validation loss (cross-entropy) at the rung: a finer reading than accuracy on a
small validation split.

    one-cycle   one learning-rate cycle over all epochs (what trials train with, early stopping or not)
    per-rung    a cycle ending at each rung, then one to the end (the network is annealed wherever
                early stopping reads it)

    python benchmarks/rung_correlation.py [--dataset digits] [--epochs 9] [--networks 16]
        [--train-subset 0] [--resolution 0] [--min-epochs 1] [--eta 3] [--seed 0]
        [--schedules one-cycle,per-rung]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from hwnas.evaluators import Recipe  # noqa: E402
from hwnas.evaluators.data import crop_flip  # noqa: E402
from hwnas.evaluators.training import Trainer, cycles_ending_at, eval_batch  # noqa: E402
from hwnas.evaluators.trial import trial_data  # noqa: E402
from hwnas.search.early_stopping import rungs_of  # noqa: E402
from hwnas.search.report import render  # noqa: E402
from hwnas.spaces import build, get_space  # noqa: E402


def curve(genotype, data, recipe: Recipe, cycles: tuple[tuple[int, int], ...]
          ) -> tuple[list[float], list[float]]:
    """Validation accuracy and loss after each epoch."""
    torch.manual_seed(recipe.seed)
    trainer = Trainer(build(genotype, data.input_shape, data.num_classes), recipe, len(data.train),
                      cycles=cycles)
    augment = crop_flip if recipe.augment and data.augmentable else None
    accuracy, loss = [], []
    for _ in range(recipe.epochs):
        trainer.train_epoch(data.train, augment)
        a, cross_entropy = _read(trainer.model, data.val)
        accuracy.append(a)
        loss.append(cross_entropy)
    return accuracy, loss


@torch.no_grad()
def _read(model: torch.nn.Module, split) -> tuple[float, float]:
    """Accuracy and mean cross-entropy over a split, in one pass (batches as accuracy_of reads them)."""
    model.eval()
    correct, total, batch = 0, 0.0, eval_batch("cpu")
    for i in range(0, len(split), batch):
        logits = model(split.images(slice(i, i + batch)).contiguous(memory_format=torch.channels_last))
        labels = split.labels[i:i + batch]
        correct += (logits.argmax(1) == labels).sum().item()
        total += torch.nn.functional.cross_entropy(logits, labels, reduction="sum").item()
    return correct / len(split), total / len(split)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--epochs", type=int, default=9)
    p.add_argument("--networks", type=int, default=16)
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--resolution", type=int, default=0)
    p.add_argument("--min-epochs", type=int, default=1)
    p.add_argument("--eta", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedules", default="one-cycle,per-rung", help="comma-separated: one-cycle, per-rung")
    args = p.parse_args()
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rungs = rungs_of(args.epochs, args.min_epochs, args.eta)
    base = Recipe(epochs=args.epochs, train_subset=args.train_subset, resolution=args.resolution, seed=args.seed)
    data = trial_data(args.dataset, "", base)
    space = get_space("mobile")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=args.seed))
    genotypes = [space.sample(study.ask(), data.input_shape) for _ in range(args.networks)]
    every = {"one-cycle": (), "per-rung": cycles_ending_at(rungs, args.epochs)}
    schedules = {name: cycles for name, cycles in every.items() if name in args.schedules.split(",")}
    curves: dict[str, list[list[float]]] = {name: [] for name in schedules}
    losses: dict[str, list[list[float]]] = {name: [] for name in schedules}
    t0 = time.perf_counter()
    for i, g in enumerate(genotypes):
        for name, cycles in schedules.items():
            accuracy, loss = curve(g, data, base, cycles)
            curves[name].append(accuracy)
            losses[name].append(loss)
        print(f"network {i + 1}/{len(genotypes)}: " + ", ".join(
            f"{name} {'/'.join(f'{a:.3f}' for a in c[-1])}" for name, c in curves.items()),
            f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    rows = []
    for name, cs in curves.items():
        final = [c[-1] for c in cs]
        row: dict[str, object] = {"schedule": name, "mean final acc": round(statistics.mean(final), 4)}
        for r in rungs:
            row[f"spearman@{r}"] = round(spearmanr([c[r - 1] for c in cs], final).statistic, 3)
            row[f"mean acc@{r}"] = round(statistics.mean(c[r - 1] for c in cs), 4)
            # lower loss should mean higher final accuracy: the correlation of -loss
            row[f"spearman loss@{r}"] = round(spearmanr([-c[r - 1] for c in losses[name]], final).statistic, 3)
        rows.append(row)
    shape = "x".join(map(str, data.input_shape))
    print(f"{args.dataset} {shape}, {len(data.train)} training images, {args.epochs} epochs, rungs "
          f"{','.join(map(str, rungs))}, {args.networks} random mobile networks, seed {args.seed}")
    print(render(rows, "table"))


if __name__ == "__main__":
    main()
