"""Data sets with fixed, seeded train / validation / test splits, and their readers.

Names: ``digits`` (scikit-learn), ``fashion-mnist`` (the original gzip idx files), ``cifar10``
(the ``cifar-10-batches-py`` pickles), ``folder:PATH`` (one sub-folder of images per class).
Official test sets stay the test split; the validation split is carved from the training files.

A data set is held as its pixels' integer levels (uint8; int32 for 16-bit images), decoded once
per node into its cache (``nodecache``) and memory-mapped by every process there: a node's
trial workers share one copy, and the next run reads no image file. Each batch is standardised
as it is taken (``Split.images``), so no float copy of a data set is ever made.
"""
from __future__ import annotations

import gzip
import math
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from hwnas.spaces.limits import TooLarge, check_memory

from . import nodecache

SPLIT_SEED = 0  # fixed, so every study of a data set sees the same splits
FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts it
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
EIGHT_BIT = "pixel values in [0, 1] (8-bit values / 255)"


class DataError(ValueError):
    """A data set that cannot be read: missing files, a bad format, a bad name."""


@dataclass(frozen=True)
class Standardise:
    """Levels to a network's input: raw = levels / scale, then (raw - mean) / std per channel
    (mean and std of the training split's raw values; an exported model ships them)."""
    scale: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    # levels * gain + shift, per channel: the same affine map in one step, float32
    gain: torch.Tensor = field(init=False, repr=False, compare=False)
    shift: torch.Tensor = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        mean, std = np.asarray(self.mean, np.float64), np.asarray(self.std, np.float64)
        gain, shift = 1 / (self.scale * std), -mean / std
        object.__setattr__(self, "gain", torch.tensor(gain, dtype=torch.float32).view(1, -1, 1, 1))
        object.__setattr__(self, "shift", torch.tensor(shift, dtype=torch.float32).view(1, -1, 1, 1))

    def to(self, device: str | torch.device) -> Standardise:
        """The same map with its gain and shift held on ``device`` (a GPU batch then copies nothing
        to the device but its levels)."""
        moved = replace(self)
        object.__setattr__(moved, "gain", self.gain.to(device))
        object.__setattr__(moved, "shift", self.shift.to(device))
        return moved

    def __call__(self, levels: torch.Tensor) -> torch.Tensor:
        d = levels.device  # .to is free where gain and shift already are (Split.to puts them there)
        return torch.addcmul(self.shift.to(d), levels.to(torch.float32), self.gain.to(d))


@dataclass(frozen=True, eq=False)
class Split:
    """Images (as integer levels, N x C x H x W) and their labels; standardised batch by batch."""
    levels: torch.Tensor
    labels: torch.Tensor
    standardise: Standardise

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, index: slice | torch.Tensor = slice(None), device: str | torch.device | None = None
               ) -> torch.Tensor:
        """The images at ``index``, standardised (float32), on ``device`` (default: where the
        levels are): moved as levels, a quarter of the bytes of floats."""
        levels = self.levels[index]
        return self.standardise(levels if device is None else levels.to(device))

    def to(self, device: str | torch.device) -> Split:
        return Split(self.levels.to(device), self.labels.to(device), self.standardise.to(device))

    def subset(self, keep: torch.Tensor) -> Split:
        return Split(self.levels[keep], self.labels[keep], self.standardise)

    def joined(self, other: Split) -> Split:
        return Split(torch.cat([self.levels, other.levels]), torch.cat([self.labels, other.labels]),
                     self.standardise)


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    input_shape: tuple[int, int, int]
    num_classes: int
    train: Split
    val: Split
    test: Split
    augmentable: bool = False  # random crop + horizontal flip suit these images
    classes: tuple[str, ...] = ()  # class names by label, where the data set has them (folders)
    raw: str = EIGHT_BIT  # what "raw" means for this data set (see Standardise)

    @property
    def standardise(self) -> Standardise:
        return self.train.standardise

    @property
    def mean(self) -> tuple[float, ...]:
        return self.standardise.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.standardise.std


Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Decoded:
    """A data set as its reader gives it, before the cache: integer levels and labels per split."""
    train: Pair
    val: Pair
    test: Pair
    num_classes: int
    scale: float  # raw = levels / scale
    augmentable: bool = False
    classes: tuple[str, ...] = ()
    raw: str = EIGHT_BIT


def _split(x: np.ndarray, y: np.ndarray, val: float, test: float) -> tuple[Pair, Pair, Pair]:
    from sklearn.model_selection import train_test_split

    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, stratify=y, random_state=SPLIT_SEED)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val / (1 - test), stratify=y_rest, random_state=SPLIT_SEED)
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


def _carve_val(x: np.ndarray, y: np.ndarray, val: float) -> tuple[Pair, Pair]:
    """Official train files -> (train, val): a stratified, seeded split."""
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=val, stratify=y, random_state=SPLIT_SEED)
    return (x_train, y_train), (x_val, y_val)


def _channel_moments(levels: np.ndarray, scale: float, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of levels / scale, in float64, a chunk of images at a time (no
    float copy of the whole split)."""
    total = np.zeros(levels.shape[1])
    squares = np.zeros(levels.shape[1])
    for i in range(0, len(levels), chunk):
        part = levels[i:i + chunk].astype(np.float64) / scale
        total += part.sum(axis=(0, 2, 3))
        squares += (part * part).sum(axis=(0, 2, 3))
    n = len(levels) * levels.shape[2] * levels.shape[3]
    mean = total / n
    return mean, np.sqrt(np.maximum(squares / n - mean * mean, 0.0)) + 1e-8


def _cached(name: str, files: list[Path], decode: Callable[[], Decoded]) -> Dataset:
    """The data set ``decode`` reads from ``files``, through this node's cache (``nodecache``)."""
    def make() -> tuple[dict[str, np.ndarray], dict]:
        d = decode()
        mean, std = _channel_moments(d.train[0], d.scale)
        made = {f"{s}_{part}": pair[i] for s, pair in (("train", d.train), ("val", d.val), ("test", d.test))
                for i, part in enumerate(("levels", "labels"))}
        return made, {"num_classes": d.num_classes, "scale": d.scale, "augmentable": d.augmentable,
                      "classes": list(d.classes), "raw": d.raw, "mean": mean.tolist(), "std": std.tolist()}

    try:
        identity = {"name": name, "files": nodecache.fingerprint(files)}
    except OSError as e:
        raise DataError(f"cannot read {name}: {e}") from None
    arrays, meta = nodecache.arrays(identity, make)
    standardise = Standardise(float(meta["scale"]), tuple(meta["mean"]), tuple(meta["std"]))

    def split(s: str) -> Split:
        return Split(torch.from_numpy(arrays[f"{s}_levels"]), torch.from_numpy(np.asarray(arrays[f"{s}_labels"],
                                                                                           dtype=np.int64)),
                     standardise)

    train = split("train")
    return Dataset(name, tuple(int(v) for v in train.levels.shape[1:]), int(meta["num_classes"]),  # type: ignore[arg-type]
                   train, split("val"), split("test"), bool(meta["augmentable"]), tuple(meta["classes"]), meta["raw"])


def load_digits(data_dir: str | None = None) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0 to 16): 60 / 20 / 20 stratified split."""
    import sklearn.datasets

    def decode() -> Decoded:
        d = sklearn.datasets.load_digits()
        x = d.images.astype(np.uint8)[:, None, :, :]
        train, val, test = _split(x, d.target, val=0.2, test=0.2)
        return Decoded(train, val, test, 10, scale=1.0,
                       raw="scikit-learn's load_digits().images: values 0 to 16, shape 8 x 8")

    files = [Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"]
    return _cached("digits", files, decode)


def _find(directory: Path, name: str, what: str) -> Path:
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(f"{what} not found: no {name}[.gz] in {directory}")


def read_idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format: big-endian header, unsigned bytes), gzip'd or not. The header
    is read first and the size it declares checked against the memory limit, so a small file that
    expands to gigabytes is refused before it is decompressed."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise DataError(f"{path} is not an idx file of unsigned bytes (bad magic number)")
            dims = struct.unpack(f">{head[3]}I", f.read(4 * head[3]).ljust(4 * head[3], b"\0"))
            size = math.prod(dims)
            try:
                check_memory(size, f"{path} (header: {' x '.join(map(str, dims))} bytes)")
            except TooLarge as e:
                raise DataError(str(e)) from None
            raw = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    if len(raw) != size:
        raise DataError(f"{path} holds {'more than ' if len(raw) > size else ''}{min(len(raw), size):,} bytes of "
                        f"data; its header says {' x '.join(map(str, dims))}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(dims)


def load_fashion_mnist(data_dir: str | None = None) -> Dataset:
    """Zalando's Fashion-MNIST, 28x28 grey: 54,000 train / 6,000 validation (stratified from the
    60,000 training images) / the official 10,000 test images."""
    directory = Path(data_dir or FASHION_MNIST_DIR)
    what = "Fashion-MNIST" + ("" if data_dir else " (install the Debian package dataset-fashion-mnist "
                                                    "or pass --data-dir)")
    files = {(split, part): _find(directory, f"{prefix}-{part}-idx{1 if part == 'labels' else 3}-ubyte", what)
             for split, prefix in (("train", "train"), ("test", "t10k")) for part in ("images", "labels")}

    def decode() -> Decoded:
        pairs = {}
        for split in ("train", "test"):
            images, labels = read_idx(files[split, "images"]), read_idx(files[split, "labels"])
            if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
                raise DataError(f"Fashion-MNIST {split} files in {directory} disagree: images {images.shape}, "
                                f"labels {labels.shape}")
            pairs[split] = (images[:, None], labels.astype(np.int64))
        train, val = _carve_val(*pairs["train"], val=0.1)
        return Decoded(train, val, pairs["test"], 10, scale=255.0, augmentable=True)

    return _cached("fashion-mnist", list(files.values()), decode)


class _ArrayUnpickler(pickle.Unpickler):
    """Reads the CIFAR pickles (dicts of lists and numpy arrays) and refuses any other object, so a
    file from elsewhere cannot run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        return super().find_class(module, name)


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        data, labels = np.asarray(d[b"data"], dtype=np.uint8), np.asarray(d[b"labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path} is not a CIFAR-10 python batch ({type(e).__name__}: {e})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(f"{path} is not a CIFAR-10 python batch: data {data.shape}, {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(data_dir: str | None = None) -> Dataset:
    """CIFAR-10 from the ``cifar-10-batches-py`` directory (or a directory holding it): 45,000 train /
    5,000 validation (stratified from data_batch_1..5) / the official 10,000 test images."""
    if not data_dir:
        raise DataError("cifar10 needs --data-dir: the cifar-10-batches-py directory (it cannot be "
                        "downloaded here)")
    directory = Path(data_dir)
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    names = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    missing = [n for n in names if not (directory / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 not found: no {', '.join(missing)} in {directory}")

    def decode() -> Decoded:
        parts = [_cifar_batch(directory / f"data_batch_{i}") for i in range(1, 6)]
        x, y = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        tx, ty = _cifar_batch(directory / "test_batch")
        if y.min() < 0 or max(y.max(), ty.max()) > 9:
            raise DataError(f"CIFAR-10 labels in {directory} must lie in 0..9")
        train, val = _carve_val(x, y, val=0.1)
        return Decoded(train, val, (tx, ty), 10, scale=255.0, augmentable=True)

    return _cached("cifar10", [directory / n for n in names], decode)


def _read_image(path: Path) -> tuple[np.ndarray, int]:
    """One image's integer levels, H x W (grey) or H x W x 3 (colour), and its largest level (255,
    or 65535 for a 16-bit grey image: it keeps its 65,536 levels, which 8 bits would clip at 255)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            # Pillow warns past 89 M pixels and refuses past twice that: refuse at the warning
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
        with im:
            check_memory(4 * 3 * im.width * im.height, f"image {path} ({im.width} x {im.height})")
            im.load()
            if im.mode in ("1", "L", "LA"):
                return np.asarray(im.convert("L"), dtype=np.uint8), 255
            if im.mode.startswith("I;16") or im.mode == "I":
                levels = np.asarray(im, dtype=np.int64)
                if levels.min(initial=0) < 0 or levels.max(initial=0) > 65535:
                    raise DataError(f"image {path} holds 32-bit integer pixels ({levels.min()} to {levels.max()}); "
                                    f"8- and 16-bit images are read: save it with one of those depths")
                return levels.astype(np.int32), 65535
            if im.mode == "F":
                raise DataError(f"image {path} holds floating-point pixels; 8- and 16-bit images are read: save it "
                                f"with one of those depths")
            return np.asarray(im.convert("RGB"), dtype=np.uint8), 255
    except DataError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError, TooLarge) as e:
        raise DataError(f"image {path} is too large to read: {e}") from None
    except Exception as e:  # a malformed file makes Pillow raise many kinds (OSError, SyntaxError, ...)
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def _resized(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an image's levels (H x W or H x W x C) to ``size`` (H, W), channel by
    channel, rounded back to its integer type."""
    from PIL import Image

    if image.shape[:2] == size:
        return image
    channels = [image] if image.ndim == 2 else [image[:, :, c] for c in range(image.shape[2])]
    target, bilinear = (size[1], size[0]), Image.Resampling.BILINEAR  # PIL sizes are (width, height)
    out = [np.asarray(Image.fromarray(np.ascontiguousarray(c, dtype=np.float32)).resize(target, bilinear))
           for c in channels]
    resized = out[0] if image.ndim == 2 else np.stack(out, axis=2)
    return np.rint(resized).clip(0, np.iinfo(image.dtype).max).astype(image.dtype)


def _folder_files(root: Path) -> tuple[list[str], list[Path], list[int]]:
    """Class names (sorted sub-folders), image files and their labels; one line for a bad folder."""
    if not root.is_dir():
        raise DataError(f"folder data set {str(root)!r} is not a directory")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"folder data set {str(root)!r} needs at least two class sub-folders, found {len(classes)}")
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if len(found) < 5:
            raise DataError(f"class folder {root / name} holds {len(found)} images; each class needs at least 5 "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        files += found
        labels += [label] * len(found)
    return classes, files, labels


def load_folder(path: str) -> Dataset:
    """Images in ``PATH/<class>/*``, classes in sorted order; grey when every image is, else RGB;
    8-bit levels, or 16-bit ones when any image is 16-bit (8-bit images then scaled to match);
    resized (bilinear) to the most common image size; 60 / 20 / 20 stratified split. Decoded once
    per node: the next run reads the cache, until a file is added, removed or changed."""
    from collections import Counter

    root = Path(path)
    classes, files, labels = _folder_files(root)

    def decode() -> Decoded:
        read = [_read_image(f) for f in files]
        deep = any(depth == 65535 for _, depth in read)
        images = [im.astype(np.int32) * 257 if deep and depth == 255 else im for im, depth in read]
        grey = all(im.ndim == 2 for im in images)
        size = Counter(im.shape[:2] for im in images).most_common(1)[0][0]
        x = np.stack([_resized(im if grey or im.ndim == 3 else np.repeat(im[:, :, None], 3, axis=2), size)
                      for im in images])
        del read, images
        x = x[:, None] if grey else x.transpose(0, 3, 1, 2)
        train, val, test = _split(x, np.asarray(labels, dtype=np.int64), val=0.2, test=0.2)
        return Decoded(train, val, test, len(classes), scale=65535.0 if deep else 255.0, classes=tuple(classes),
                       raw=f"pixel values in [0, 1] ({'16-bit values / 65535' if deep else '8-bit values / 255'})")

    return _cached(f"folder:{path}", files, decode)


DATASETS = {"digits": load_digits, "fashion-mnist": load_fashion_mnist, "cifar10": load_cifar10}
FOLDER_PREFIX = "folder:"


def dataset_names() -> str:
    return f"{', '.join(DATASETS)}, {FOLDER_PREFIX}PATH"


def check_name(name: str) -> None:
    if name not in DATASETS and not (name.startswith(FOLDER_PREFIX) and name[len(FOLDER_PREFIX):]):
        raise DataError(f"unknown data set {name!r}; available: {dataset_names()}")


def load_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """Read a data set by name; ``data_dir`` is where its files are (for those that have files)."""
    check_name(name)
    if name.startswith(FOLDER_PREFIX):
        return load_folder(name[len(FOLDER_PREFIX):])
    return DATASETS[name](data_dir or None)


def prepare(data: Dataset, resolution: int = 0, train_subset: int = 0) -> Dataset:
    """The data a recipe trains on: every split resized to ``resolution`` x ``resolution`` (0 = as
    stored; the levels resized, then rounded: this process's own copy, at the new size), and the
    first ``train_subset`` images of a fixed, seeded shuffle of the training split (0 = all of it),
    so a larger subset holds every smaller one."""
    train, val, test, shape = data.train, data.val, data.test, data.input_shape
    if train_subset and train_subset < len(train):
        keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(SPLIT_SEED))[:train_subset]
        train = train.subset(keep)
    if resolution and (resolution, resolution) != tuple(shape[1:]):
        images = sum(len(s) for s in (train, val, test))
        try:
            check_memory(train.levels.element_size() * images * shape[0] * resolution ** 2,
                         f"{data.name} at --resolution {resolution} ({images:,} images)")
        except TooLarge as e:
            raise DataError(str(e)) from None
        train, val, test = (Split(_resize(s.levels, resolution), s.labels, s.standardise) for s in (train, val, test))
        shape = (shape[0], resolution, resolution)
    if train is data.train and shape == data.input_shape:
        return data
    return replace(data, input_shape=shape, train=train, val=val, test=test)


def _resize(levels: torch.Tensor, side: int, chunk: int = 4096) -> torch.Tensor:
    """Bilinear resize of integer levels in chunks (bounded memory), antialiased when shrinking,
    rounded back to their type. (Standardising is affine, so it commutes with the resize.)"""
    shrink = side < min(levels.shape[2:])
    top = torch.iinfo(levels.dtype).max

    def one(part: torch.Tensor) -> torch.Tensor:
        r = F.interpolate(part.float(), size=(side, side), mode="bilinear", align_corners=False, antialias=shrink)
        return r.round_().clamp_(0, top).to(levels.dtype)

    return torch.cat([one(levels[i:i + chunk]) for i in range(0, len(levels), chunk)])


def crop_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Standard augmentation of a batch: a random crop of the image padded by 1/8 of its side with
    zeros (the training mean after standardisation), then a horizontal flip with probability 1/2."""
    n, c, h, w = x.shape
    pad = max(1, min(h, w) // 8)
    padded = F.pad(x, (pad, pad, pad, pad))
    # drawn on the CPU generator (the same crops on any device), then indices where the batch is
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator)
    flip = torch.rand(n, generator=generator) < 0.5
    draws, d = torch.cat([dy, dx, flip[:, None].long()], 1), x.device  # 3 numbers an image
    if d.type == "cuda":  # one copy a step, and no wait: a plain copy to a GPU first waits for all
        draws = draws.pin_memory().to(d, non_blocking=True)  # the work queued there (a stall a step)
    rows = draws[:, :1] + torch.arange(h, device=d)  # (n, h)
    cols = draws[:, 1:2] + torch.arange(w, device=d)  # (n, w)
    cols = torch.where(draws[:, 2:].bool(), cols.flip(1), cols)
    return padded[torch.arange(n, device=d)[:, None, None, None], torch.arange(c, device=d)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]
