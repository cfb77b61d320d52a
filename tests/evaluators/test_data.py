"""Readers, tested on small files written here in each real format, and Fashion-MNIST on the real files."""
import gzip
import os
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from hwnas.evaluators import Recipe, TrialSpec, evaluate, nodecache
from hwnas.evaluators.data import FASHION_MNIST_DIR, DataError, crop_flip, load_dataset, prepare, read_idx


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_fashion(directory: Path, train: int = 100, test: int = 30) -> dict:
    rng = np.random.default_rng(0)
    arrays = {"train": (rng.integers(0, 256, (train, 28, 28)), np.arange(train) % 10),
              "t10k": (rng.integers(0, 256, (test, 28, 28)), (np.arange(test) * 7) % 10)}
    for prefix, (images, labels) in arrays.items():
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return arrays


def test_fashion_mnist_reader_on_idx_files(tmp_path):
    raw = fake_fashion(tmp_path)
    d = load_dataset("fashion-mnist", str(tmp_path))
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10 and d.augmentable
    assert [len(d.train), len(d.val), len(d.test)] == [90, 10, 30]
    assert sorted(d.val.labels.tolist()) == list(range(10))  # stratified: one of each class
    # the official test set is the test split, in file order, standardised with train's mean and std
    assert d.test.labels.tolist() == raw["t10k"][1].tolist()
    test_images = raw["t10k"][0].astype(np.float64) / 255
    correlation = np.corrcoef(d.test.images().numpy().ravel(), test_images.ravel())[0, 1]
    assert correlation > 0.9999
    assert abs(float(d.train.images().mean())) < 1e-4 and abs(float(d.train.images().std()) - 1) < 1e-3
    # fixed split: a second read gives the same validation images
    assert torch.equal(load_dataset("fashion-mnist", str(tmp_path)).val.images(), d.val.images())


def test_idx_reader_reads_plain_files_and_rejects_bad_ones(tmp_path):
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    (tmp_path / "a").write_bytes(gzip.decompress((tmp_path / "a.gz").read_bytes()))
    assert np.array_equal(read_idx(tmp_path / "a"), array) and np.array_equal(read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(DataError, match="bad magic"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(gzip.decompress((tmp_path / "a.gz").read_bytes())[:-3])
    with pytest.raises(DataError, match="header says"):
        read_idx(tmp_path / "short")


def test_missing_fashion_files_name_what_is_missing(tmp_path):
    with pytest.raises(DataError, match="no train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", str(tmp_path))


def write_cifar(directory: Path, per_batch: int = 20) -> dict:
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    batches = {}
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, (per_batch, 3072)).astype(np.uint8)
        labels = [int(v) for v in rng.permutation(np.arange(per_batch) % 10)]
        batches[name] = (data, labels)
        with open(directory / name, "wb") as f:  # the originals are Python 2 pickles of dicts, bytes keys
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, f, protocol=2)
    with open(directory / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f, protocol=2)
    return batches


def test_cifar10_reader_on_python_batches(tmp_path):
    batches = write_cifar(tmp_path / "cifar-10-batches-py")
    for given in (tmp_path, tmp_path / "cifar-10-batches-py"):  # the directory or its parent
        d = load_dataset("cifar10", str(given))
        assert d.input_shape == (3, 32, 32) and d.num_classes == 10 and d.augmentable
        assert [len(d.train), len(d.val), len(d.test)] == [90, 10, 20]
    data, labels = batches["test_batch"]
    assert d.test.labels.tolist() == labels
    # rows are 1024 red, then green, then blue values: channel 0 of image 3 is its first 1024 bytes
    red = data[3, :1024].reshape(32, 32).astype(np.float64)
    assert np.corrcoef(d.test.images()[3, 0].numpy().ravel(), red.ravel())[0, 1] > 0.9999


def test_cifar10_reader_refuses_pickles_that_run_code(tmp_path):
    write_cifar(tmp_path)

    class Evil:
        def __reduce__(self):
            return (print, ("ran code",))

    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(DataError, match=r"data_batch_2 is not a CIFAR-10 python batch.*refusing \S*print"):
        load_dataset("cifar10", str(tmp_path))


def test_cifar10_needs_its_directory(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("cifar10")
    with pytest.raises(DataError, match="no data_batch_1, .*test_batch"):
        load_dataset("cifar10", str(tmp_path))


def write_folder(root: Path, classes=("cat", "dog", "eel"), per_class: int = 6, rgb_one: bool = False) -> None:
    from PIL import Image

    rng = np.random.default_rng(2)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            size = (10, 12) if i else (7, 9)  # one image per class of another size: resized
            pixels = rng.integers(0, 256, size[::-1]).astype(np.uint8)
            Image.fromarray(pixels, "L").save(root / name / f"{i}.png")
    if rgb_one:
        Image.fromarray(np.zeros((12, 10, 3), np.uint8), "RGB").save(root / classes[0] / "rgb.jpg")
    (root / classes[0] / "notes.txt").write_text("not an image")


def test_folder_reader(tmp_path):
    write_folder(tmp_path / "grey")
    d = load_dataset(f"folder:{tmp_path / 'grey'}")
    assert d.input_shape == (1, 12, 10) and d.num_classes == 3 and not d.augmentable
    assert sum(len(s) for s in (d.train, d.val, d.test)) == 18
    assert set(d.train.labels.tolist()) == {0, 1, 2}
    write_folder(tmp_path / "mixed", rgb_one=True)
    assert load_dataset(f"folder:{tmp_path / 'mixed'}").input_shape == (3, 12, 10)


def test_folder_reader_errors(tmp_path):
    write_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DataError, match="at least two class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'one'}")
    with pytest.raises(DataError, match="is not a directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    write_folder(tmp_path / "broken")
    (tmp_path / "broken" / "dog" / "9.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*9.png"):
        load_dataset(f"folder:{tmp_path / 'broken'}")
    with pytest.raises(DataError, match="unknown data set 'mnist'; available: digits, fashion-mnist, cifar10"):
        load_dataset("mnist")


def _mapped_files() -> str:
    return Path("/proc/self/maps").read_text()


def test_a_folder_is_decoded_once_per_node_and_memory_mapped(tmp_path, monkeypatch):
    """The first read decodes the images into the node's cache; the next maps the cache and reads
    no image (one made unreadable, its size and time kept, goes unnoticed); a changed folder is
    decoded again. The levels are 8-bit, mapped from the cache's file, and a batch standardises
    to what the mean and std say."""
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    write_folder(tmp_path / "set")
    first = load_dataset(f"folder:{tmp_path / 'set'}")
    entries = list((tmp_path / "cache" / "data").glob("*/meta.json"))
    assert len(entries) == 1 and first.train.levels.dtype == torch.uint8
    assert str(entries[0].parent / "train_levels.npy") in _mapped_files()
    raw = first.train.levels.double() / 255
    mean, std = torch.tensor(first.mean).view(1, -1, 1, 1), torch.tensor(first.std).view(1, -1, 1, 1)
    assert torch.allclose(first.train.images(slice(0, 5)).double(), ((raw - mean) / std)[:5], atol=1e-5)
    # the next run: an image spoilt behind the fingerprint's back is never decoded
    image = tmp_path / "set" / "dog" / "3.png"
    stat = image.stat()
    image.write_bytes(b"x" * stat.st_size)
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = load_dataset(f"folder:{tmp_path / 'set'}")
    assert torch.equal(again.val.levels, first.val.levels) and again.mean == first.mean
    # a folder that changed is read again (and here meets the spoilt image)
    write_folder(tmp_path / "more", classes=("newt",))
    (tmp_path / "more" / "newt").rename(tmp_path / "set" / "newt")
    with pytest.raises(DataError, match="cannot read image .*3.png"):
        load_dataset(f"folder:{tmp_path / 'set'}")
    image.unlink()
    grown = load_dataset(f"folder:{tmp_path / 'set'}")
    assert grown.num_classes == 4 and len(list((tmp_path / "cache" / "data").glob("*/meta.json"))) == 1


def test_an_entry_of_files_since_changed_is_removed_and_others_stay(tmp_path, monkeypatch):
    """A folder that changed is decoded into a new entry, and its old entry goes (no run can read
    it again); another folder's entry stays, and so does a second copy of a data set under the
    same name elsewhere. A process still mapping the removed entry reads it on."""
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    for name in ("a", "b"):
        write_folder(tmp_path / name)
    old = load_dataset(f"folder:{tmp_path / 'a'}")
    load_dataset(f"folder:{tmp_path / 'b'}")
    files = [f for f in sorted((tmp_path / "b").rglob("*")) if f.is_file()]
    nodecache.arrays({"name": "twin", "files": nodecache.fingerprint(files[:2])}, lambda: ({"x": np.zeros(2)}, {}))
    nodecache.arrays({"name": "twin", "files": nodecache.fingerprint(files[2:4])}, lambda: ({"x": np.ones(2)}, {}))

    def entries() -> set[str]:
        return {m.parent.name for m in (tmp_path / "cache" / "data").glob("*/meta.json")}

    before = entries()
    write_folder(tmp_path / "more", classes=("newt",))
    (tmp_path / "more" / "newt").rename(tmp_path / "a" / "newt")
    expected = old.val.levels.clone()
    grown = load_dataset(f"folder:{tmp_path / 'a'}")
    after = entries()
    assert len(before) == 4 and len(after) == 4 and len(before - after) == 1, (before, after)
    assert grown.num_classes == 4 and torch.equal(old.val.levels, expected)


def test_processes_that_start_together_decode_once_and_share_the_pages(tmp_path):
    """Two processes reading a new data set at once: one decodes under the lock, both map the same
    files (what lets a node's trial workers hold one copy)."""
    write_folder(tmp_path / "set", per_class=30)
    code = ("import sys; from pathlib import Path; from hwnas.evaluators.data import load_dataset; "
            "d = load_dataset('folder:' + sys.argv[1]); "
            "print([l for l in Path('/proc/self/maps').read_text().splitlines() if 'train_levels.npy' in l][0]"
            ".split()[-1])")
    env = {**os.environ, "HWNAS_CACHE": str(tmp_path / "cache")}
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "set")], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    mapped = {out.strip() for out, _ in outs}
    assert len(mapped) == 1 and Path(mapped.pop()).parent.parent == tmp_path / "cache" / "data"
    assert len(list((tmp_path / "cache" / "data").iterdir())) == 2  # the entry and its lock: no stray half-write


def test_a_cache_that_cannot_be_written_costs_the_sharing_not_the_run(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "file"))
    with pytest.warns(UserWarning, match="data cache .* not written"):
        d = load_dataset("digits")
    assert len(d.train) == 1077 and d.train.images().dtype == torch.float32


def test_prepare_resizes_and_takes_nested_subsets():
    d = load_dataset("digits")
    assert prepare(d) is d
    small, large = prepare(d, train_subset=100), prepare(d, train_subset=300)
    assert len(small.train) == 100 and len(small.val) == len(d.val)
    rows = lambda x: {tuple(r.flatten().tolist()) for r in x}
    assert rows(small.train.images()) <= rows(large.train.images())
    big = prepare(d, resolution=16)
    assert big.input_shape == (1, 16, 16) and big.train.images().shape[1:] == (1, 16, 16)
    assert big.test.images().shape == (len(d.test), 1, 16, 16)


def test_crop_flip_is_a_padded_shift_or_its_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    outs = [crop_flip(x.repeat(8, 1, 1, 1), torch.Generator().manual_seed(s)) for s in (0, 0, 1)]
    assert torch.equal(outs[0], outs[1]) and not torch.equal(outs[0], outs[2])
    padded = torch.nn.functional.pad(x.repeat(8, 1, 1, 1), (1, 1, 1, 1))
    flips = 0
    for i, out in enumerate(outs[0]):
        candidates = [(padded[i, :, dy:dy + 8, dx:dx + 8], f) for dy in range(3) for dx in range(3) for f in (0, 1)]
        matches = [f for crop, f in candidates if torch.equal(out, crop.flip(2) if f else crop)]
        assert matches, f"sample {i} is no crop of its padded image"
        flips += matches[0]
    assert 0 < flips < 16  # some flipped, some not


@pytest.mark.slow
def test_real_fashion_mnist_files():
    """The files the Debian package dataset-fashion-mnist installs (CI installs it)."""
    assert Path(FASHION_MNIST_DIR, "train-images-idx3-ubyte.gz").is_file(), \
        "apt-get install dataset-fashion-mnist (see .ci/run)"
    d = load_dataset("fashion-mnist")
    assert [len(d.train), len(d.val), len(d.test)] == [54_000, 6_000, 10_000]
    assert d.val.labels.bincount().tolist() == [600] * 10 and d.test.labels.bincount().tolist() == [1000] * 10
    labels = read_idx(Path(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz"))
    assert d.test.labels.tolist() == labels.tolist()
    # a small trial really trains on them: well above chance (0.1) after 125 steps
    m = evaluate(TrialSpec(0, "stem_c8_k3_s1_relu, conv_r1_k3_s2_c16_relu, conv_r1_k3_s2_c32_relu, head_relu",
                           "fashion-mnist", Recipe(epochs=2, batch_size=32, train_subset=2000, augment=False))).metrics
    assert m.accuracy > 0.5 and m.test_accuracy > 0.5
