"""What a node keeps between runs, in one folder (``$HWNAS_CACHE``, default ``~/.cache/hwnas``):
the latency anchors (``reference``) and decoded data sets (``arrays``).

A decoded data set is a folder of ``.npy`` files that every process on the node memory-maps:
the operating system holds its pages once, however many trial workers read them, and the next
run skips decoding. It is written to a temporary folder and renamed into place, under a lock, so
workers that start together decode it once and never read half a file.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

CACHE_ENV = "HWNAS_CACHE"
DATA = "data"  # the sub-folder of decoded data sets
META = "meta.json"
FORMAT = 1  # bump when what is written changes: older entries are then not read


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hwnas")


def fingerprint(files: list[Path]) -> list[tuple[str, int, int]]:
    """What says a source changed: each file's absolute path, size and modification time. (Not
    ``resolve()``d: that walks every component's links, 1.3 s for 50,000 files against 0.2 s; a
    folder reached by two names is decoded once for each.)"""
    out = []
    for f in files:
        s = f.stat()
        out.append((os.path.abspath(f), s.st_size, s.st_mtime_ns))
    return out


def arrays(identity: dict, make: Callable[[], tuple[dict[str, np.ndarray], dict]]
           ) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays and metadata ``make`` returns, from this node's cache when an entry of the same
    ``identity`` (anything JSON: a name, a path, file fingerprints) is there, memory-mapped
    copy-on-write (pages shared with every other reader until written, which nothing does);
    else made, written and mapped. A cache that cannot be written (read-only, full) costs the
    sharing, not the run: the arrays made are returned, with a warning."""
    text = json.dumps({"format": FORMAT, **identity}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    root = cache_dir() / DATA
    entry = root / key
    found = _mapped(entry)
    if found is not None:
        return found
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / f"{key}.lock", "w")
    except OSError as e:
        _unshared(root, e)
        return make()
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process decoding the same: wait, then map its entry
        found = _mapped(entry)
        if found is not None:
            return found
        made, meta = make()
        tmp = None
        try:
            tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{key}-"))
            for name, a in made.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(a), allow_pickle=False)
            (tmp / META).write_text(json.dumps({"identity": json.loads(text), "arrays": sorted(made), **meta}))
            os.replace(tmp, entry)
        except OSError as e:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            _unshared(root, e)
            return made, meta
        except BaseException:  # Ctrl-C mid-write: no half entry left (kill -9 leaves the hidden folder)
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
            raise
        _remove_superseded(root, identity, key)
    return _mapped(entry) or (made, meta)


def _remove_superseded(root: Path, identity: dict, key: str) -> None:
    """Remove the entries made from an earlier state of the same source: the same ``name`` and
    files in common (``fingerprint``'s paths; a folder that grew shares most). Made from files
    since changed, or by an older FORMAT, no run reads them again, and a folder edited and
    searched again would leave a decoded copy behind each time. A process that maps one keeps
    its pages (a removed file's mapped pages stay until unmapped)."""
    paths = {f[0] for f in identity.get("files", ())}
    for meta in root.glob(f"*/{META}"):
        if meta.parent.name == key:
            continue
        try:
            other = json.loads(meta.read_text())["identity"]
            same = other.get("name") == identity.get("name") and not paths.isdisjoint(f[0] for f in other["files"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):  # not ours to judge
            continue
        if same:
            shutil.rmtree(meta.parent, ignore_errors=True)


def _unshared(root: Path, error: OSError) -> None:
    warnings.warn(f"data cache {root} not written ({error}): this process holds its own copy of the data set",
                  stacklevel=3)


def _mapped(entry: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """The entry's arrays, memory-mapped, and its metadata; None where there is no entry (or it
    was just removed as superseded by another version's run: then it is made again)."""
    try:
        meta = json.loads((entry / META).read_text())
        return {n: np.load(entry / f"{n}.npy", mmap_mode="c", allow_pickle=False) for n in meta["arrays"]}, meta
    except (FileNotFoundError, NotADirectoryError):  # no entry (or no cache folder: a file there)
        return None
