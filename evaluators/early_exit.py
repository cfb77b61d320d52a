"""Early exits: calibrate the confidence threshold, run the dynamic network, and weigh its cost by
where samples really leave (a MAC counter only sees the path one input takes)."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from hwnas.spaces.builder import NEVER, Network

from . import quiet
from .cost import count_macs
from .data import Split
from .latency import timing
from .metrics import Metrics
from .reference import drift_scale
from .training import eval_batch


@torch.no_grad()
def head_confidences(model: Network, split: Split, device: str = "cpu",
                     batch_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax confidence and predicted class of every head (rows: exits first, main head last)."""
    model.eval()
    batch_size = batch_size or eval_batch(device)
    conf, pred = [], []
    for i in range(0, len(split), batch_size):
        # channels_last, as accuracy_of
        x = split.images(slice(i, i + batch_size), device).contiguous(memory_format=torch.channels_last)
        probs = torch.stack([o.softmax(1) for o in model.forward_exits(x)])
        c, p = probs.max(2)
        conf.append(c.cpu())
        pred.append(p.cpu())
    return torch.cat(conf, 1).numpy(), torch.cat(pred, 1).numpy()


def exit_heads(conf: np.ndarray, threshold: float) -> np.ndarray:
    """Index of the head each sample leaves at: the first exit confident enough, else the main head."""
    confident = conf[:-1] >= threshold
    return np.where(confident.any(0), confident.argmax(0), len(conf) - 1)


def calibrate(conf: np.ndarray, pred: np.ndarray, y: np.ndarray, tolerance: float) -> float:
    """The lowest threshold whose accuracy with exits stays within ``tolerance`` of the main head's.
    Candidates lie midway between observed exit confidences, so no sample sits on the threshold
    (a batch-1 run that differs in the last bit then still takes the same exits)."""
    full = (pred[-1] == y).mean()
    seen = np.unique(conf[:-1])
    candidates = np.concatenate([[seen[0] / 2], (seen[1:] + seen[:-1]) / 2, [NEVER]]) if seen.size else [NEVER]
    cols = np.arange(len(y))
    for t in candidates:
        if (pred[exit_heads(conf, t), cols] == y).mean() >= full - tolerance - 1e-12:
            return float(t)
    return NEVER


def cumulative_macs(model: Network, input_shape: tuple[int, int, int]) -> list[int]:
    """MACs spent by a sample that leaves at each head: the stages up to it and every head run on
    the way (earlier exits included); the last entry is the main head's."""
    def until(k: int) -> Callable[[torch.Tensor], None]:
        def run(x: torch.Tensor) -> None:
            for j, _ in model.heads(x):  # lazy: stopping at head k computes nothing after it
                if j == k:
                    return
        return run

    return [count_macs(model, input_shape, forward=until(k)) for k in range(len(model.exits) + 1)]


CHECKPOINT_EVERY = 32  # inputs (a checkpoint costs about 0.1 ms in a Ray worker)


@torch.no_grad()
def dynamic_run(model: Network, split: Split, threshold: float, device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Run the dynamic network one input at a time over ``split``, untimed: the prediction and the
    head taken of each input (batch 1, as the exported model answers)."""
    model.eval()
    split = split.to(device)  # levels: each image is standardised as it is taken
    preds, heads = np.empty(len(split), dtype=np.int64), np.empty(len(split), dtype=np.int64)
    for i in range(len(split)):
        if i % CHECKPOINT_EVERY == 0:
            quiet.checkpoint()  # a trial beside it may want to time: 0.2-0.4 s for digits' 360 inputs here
        logits, heads[i] = model.predict_early_exit(split.images(slice(i, i + 1)), threshold)
        preds[i] = logits.argmax(1).item()
    return preds, heads


# Inputs timed, spread evenly over the validation split in its order, so that the heads come in
# their real mix (timing the main head's path as often as an exit's over-represents it, and a
# deeper path evicts a shallower one's weights from the cache: +2-15 % measured). Timing every
# input (all 360 of digits' validation split, 0.2-0.5 s of quiet phase on this machine while the
# other trials on the node wait) measured each head's path tens of times over. A head that few
# inputs take is topped up to HEAD_RUNS_LEAST runs after the stream (its weight is small).
TIMED_INPUTS = 90
HEAD_RUNS_LEAST = 5


@torch.no_grad()
def head_latency_ms(model: Network, split: Split, heads: np.ndarray, threshold: float, device: str = "cpu",
                    inputs: int = TIMED_INPUTS, warmup: int = 10) -> dict[int, float]:
    """Median ms of the dynamic network's batch-1 run of an input leaving at each head taken in
    ``heads`` (``dynamic_run``'s), over ``inputs`` inputs spread evenly over ``split`` in its order
    (0: every input) and, for a head fewer of them take, more runs of its own inputs up to
    ``HEAD_RUNS_LEAST``; after ``warmup`` runs. The caller holds the quiet."""
    model.eval()
    split = split.to(device)  # levels: each image is standardised as it is taken, outside the clock
    n = len(split)
    order = list(range(n)) if not inputs or inputs >= n else [int(i) for i in np.linspace(0, n - 1, inputs)]
    for k in np.unique(heads):
        short = HEAD_RUNS_LEAST - sum(heads[i] == k for i in order)
        if short > 0:
            order += [int(i) for i in np.resize(np.flatnonzero(heads == k), short)]
    for i in range(min(warmup, n)):
        model.predict_early_exit(split.images(slice(i, i + 1)), threshold)
    images = [split.images(slice(i, i + 1)) for i in order]
    times: dict[int, list[float]] = {}
    for i, x in zip(order, images):
        start = time.perf_counter()
        model.predict_early_exit(x, threshold)  # .item() inside waits for the device
        times.setdefault(int(heads[i]), []).append((time.perf_counter() - start) * 1e3)
    return {k: float(np.median(t)) for k, t in times.items()}


def expected_ms(per_head: dict[int, float], rates: list[float]) -> float:
    """The dynamic network's expected latency: each head's median (``head_latency_ms``) weighted
    by the share of inputs that leave there (medians, so a burst of load does not dominate)."""
    return sum(ms * rates[k] for k, ms in per_head.items())


def exit_metrics(model: Network, val: Split, test: Split, input_shape: tuple[int, int, int],
                 tolerance: float, device: str = "cpu", threads: int = 0) -> Metrics:
    """Calibrate on the validation split, then measure the dynamic network there (batch 1, with
    ``threads`` CPU threads as ``latency.measure_latency``)."""
    y = val.labels
    conf, pred = head_confidences(model, val, device)
    threshold = calibrate(conf, pred, y.numpy(), tolerance)
    on_device = val.to(device)  # once, for the untimed run and the timed one
    with timing(threads, device, realtime=False):  # the threads the timing uses: the same rounding, the same heads
        preds, heads = dynamic_run(model, on_device, threshold, device)
    rates = [float((heads == k).mean()) for k in range(len(conf))]
    with quiet.measuring(), timing(threads, device):  # timed: only while other trials pause
        latency_ms = expected_ms(head_latency_ms(model, on_device, heads, threshold, device), rates)
        if device == "cpu":  # anchored as latency_ms is (evaluators.reference), by a reference timed right after
            latency_ms *= drift_scale("torch", input_shape, threads)
    cumulative = cumulative_macs(model, input_shape)
    test_conf, test_pred = head_confidences(model, test, device)
    test_heads = exit_heads(test_conf, threshold)
    return Metrics(
        accuracy=float((preds == y.numpy()).mean()),  # what the dynamic network answers
        accuracy_full=float((pred[-1] == y.numpy()).mean()),
        test_accuracy=float((test_pred[test_heads, np.arange(len(test_heads))] == test.labels.numpy()).mean()),
        test_accuracy_full=float((test_pred[-1] == test.labels.numpy()).mean()),
        exit_threshold=threshold,
        exit_tolerance=tolerance,
        exit_rates=rates,
        exit_macs=cumulative,
        expected_macs=float(sum(r * m for r, m in zip(rates, cumulative))),
        expected_latency_ms=latency_ms)
