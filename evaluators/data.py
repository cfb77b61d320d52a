"""Data sets as tensors with fixed, seeded train / validation / test splits."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

SPLIT_SEED = 0  # fixed, so every study of a data set sees the same splits


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]


def _split(x: np.ndarray, y: np.ndarray, val: float, test: float):
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, stratify=y, random_state=SPLIT_SEED)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val / (1 - test), stratify=y_rest, random_state=SPLIT_SEED)
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def _tensors(pair, mean: float, std: float) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = pair
    return torch.from_numpy((x - mean) / std).float(), torch.from_numpy(y).long()


def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 digits: 60 / 20 / 20 stratified split, standardised on train."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = d.images.astype(np.float32)[:, None, :, :]
    train, val, test = _split(x, d.target, val=0.2, test=0.2)
    mean, std = float(train[0].mean()), float(train[0].std())
    return Dataset("digits", (1, 8, 8), 10, _tensors(train, mean, std), _tensors(val, mean, std),
                   _tensors(test, mean, std))


DATASETS = {"digits": load_digits}


def load_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise KeyError(f"unknown data set {name!r}; available: {', '.join(DATASETS)}")
    return DATASETS[name]()
