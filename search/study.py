"""Where a study lives (an Optuna journal file under ``<dir>/<study>/``) and its sampler."""
from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import uuid
from pathlib import Path

import optuna
import yaml
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock, JournalStorage

from hwnas.evaluators.metrics import BUDGETS, OBJECTIVES
from hwnas.spaces import Space, get_space, is_space_file
from hwnas.spaces.registry import remember
from hwnas.spaces.spacefile import differences

from . import attrs
from .config import CONFIG_FILE, SEED_LIMIT, RunConfig, budgets_from, check_study_name, save_config
from .errors import UsageError
from .samplers import Screen, make_sampler

JOURNAL = "journal.log"


def journal_path(directory: str, study: str) -> Path:
    return Path(directory) / study / JOURNAL


STALE_LOCK_S = 10.0  # a write holds the lock for milliseconds: an older lock was left by a killed process
LOCK_TIMEOUT_S = 60.0


class _TimedLock(JournalFileSymlinkLock):
    """Optuna's symlink lock that breaks a stale lock (kill -9 during a write) after STALE_LOCK_S
    and gives up with a clear error, not a hang, when the file stays locked LOCK_TIMEOUT_S."""

    def __init__(self, filepath: str) -> None:
        super().__init__(filepath, grace_period=None)

    def acquire(self) -> bool:
        deadline, pause = time.monotonic() + LOCK_TIMEOUT_S, 0.001
        while True:
            try:
                os.symlink(self._lock_target_file, self._lock_file)
                return True
            except FileExistsError:
                pass
            try:
                if time.time() - os.lstat(self._lock_file).st_mtime > STALE_LOCK_S:
                    os.unlink(self._lock_file)
                    print(f"search: removed a stale lock {self._lock_file} (left by a killed process)",
                          file=sys.stderr)
                    continue
            except FileNotFoundError:
                continue
            if time.monotonic() > deadline:
                raise UsageError(f"study file {self._lock_target_file} stayed locked for {LOCK_TIMEOUT_S:.0f} s "
                                 f"({self._lock_file}); another process keeps writing it") from None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def release(self) -> None:
        """Optuna's release (rename the lock aside, then delete it), safe against Ctrl-C or SIGTERM
        raised inside it. Optuna's own deletes the renamed file on any exception, so an interrupt
        that came just before the rename raised FileNotFoundError instead, and the search ended
        with exit status 1 and a lock left behind (seen once in CI) instead of 130."""
        renamed = f"{self._lock_file}{uuid.uuid4()}.rename"
        renamed_aside = False
        try:
            os.rename(self._lock_file, renamed)
            renamed_aside = True
            os.unlink(renamed)
        except OSError:
            raise RuntimeError(f"did not hold the lock {self._lock_file}") from None
        except BaseException:  # interrupted: finish releasing what is still ours, and let it through
            with contextlib.suppress(OSError):
                if renamed_aside or os.path.lexists(renamed):
                    os.unlink(renamed)
                else:  # not renamed yet: the lock file is still ours (nobody else removes a fresh one)
                    os.unlink(self._lock_file)
            raise


def _ends_torn(path: Path) -> bool:
    """Whether the file's last byte is not a newline (an empty file ends clean)."""
    with open(path, "rb") as f:
        if f.seek(0, os.SEEK_END) == 0:
            return False
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


def set_aside_torn_tail(path: Path) -> Path | None:
    """A journal whose last line has no newline was cut mid-append (a crash, a full disk): Optuna
    reads past it, but the next append would glue a new line to it and make the whole file
    unreadable. Move the partial line to ``journal.log.torn-<time>-<pid>`` beside it and cut the
    journal back to its last whole line; return the new file, or None when the journal ends
    cleanly. Looked at again under the journal's lock, so a live writer's append in progress is
    never mistaken for a torn one (and a clean journal costs one byte read, no lock)."""
    if not path.exists() or not _ends_torn(path):
        return None
    lock = _TimedLock(str(path))
    lock.acquire()
    try:
        if not _ends_torn(path):
            return None
        data = path.read_bytes()  # rare: read whole only when torn
        keep = data.rfind(b"\n") + 1  # 0 when no line of the file is whole
        aside = path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
        with open(aside, "wb") as out:
            out.write(data[keep:])
            out.flush()
            os.fsync(out.fileno())
        with open(path, "rb+") as f:
            f.truncate(keep)
            os.fsync(f.fileno())
    finally:
        lock.release()
    print(f"search: the last {len(data) - keep} bytes of {path} were a write cut short (a crash or a full disk): "
          f"set aside in {aside.name}; the study reads as before", file=sys.stderr)
    return aside


def _storage(path: Path) -> JournalStorage:
    """The study's journal; a file that cannot be read is one clear error and is left untouched
    (but for a torn last line, set aside first: ``set_aside_torn_tail``)."""
    try:
        set_aside_torn_tail(path)
        return JournalStorage(JournalFileBackend(str(path), lock_obj=_TimedLock(str(path))))
    except UsageError:
        raise
    except PermissionError as e:
        raise UsageError(f"cannot open study file {path}: {e.strerror}") from None
    except Exception as e:  # Optuna replays every line: any damage shows up here
        raise UsageError(f"study file {path} is corrupt ({type(e).__name__}: {e}); it was left as it was — "
                         f"restore it or choose a new --study") from None


def open_study(config: RunConfig, screen: Screen | None = None, space: Space | None = None,
               storage: JournalStorage | None = None) -> optuna.Study:
    """Create the study, or continue it when it exists with the same space, data and objectives.
    ``space``: the config's space when the caller has it already (else it is read again);
    ``storage``: its journal as ``check_continuation`` read it (else it is read here)."""
    path = journal_path(config.dir, config.study)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(13, "not writable")
    except OSError as e:
        raise UsageError(f"cannot keep study {config.study!r} in --dir {config.dir}: {e.strerror or e} "
                         f"({path.parent})") from None
    storage = storage or _storage(path)  # read already: the journal syncs, reading only what was added
    space_text = (space or get_space(config.space)).text
    names = {s.study_name for s in storage.get_all_studies()}  # reading first: a failed create still writes
    if config.study not in names:
        try:
            study = optuna.create_study(study_name=config.study, storage=storage,
                                        directions=[OBJECTIVES[o] for o in config.objectives])
            study.set_metric_names(list(config.objectives))
            study.set_user_attr(attrs.IDENTITY, config.identity())
            if space_text:
                study.set_user_attr(attrs.SPACE, space_text)
        except optuna.exceptions.DuplicatedStudyError:  # a second `search run` made it just now
            names.add(config.study)
    if config.study in names:
        study = optuna.load_study(study_name=config.study, storage=storage)
        _refuse_other_options(study, config, space_text, path)
    study.set_user_attr(attrs.CONFIG, config.as_dict())
    save_config(config, path.parent / CONFIG_FILE)
    # A continued study reseeds from its size, so a seeded sampler does not replay its first asks.
    study.sampler = make_sampler(config.sampler, (config.seed + len(study.trials)) % SEED_LIMIT, screen)
    return study


def check_continuation(config: RunConfig, space: Space) -> JournalStorage | None:
    """Refuse, before any work (a Ray start is seconds), to continue an existing study with other
    options or another space; ``open_study`` checks again when it opens the study. Reads only, and
    returns the journal it read for ``open_study`` (None: no study file yet): a journal is replayed
    whole to be read (0.18 s for 200 trials here), once is enough."""
    path = journal_path(config.dir, config.study)
    if not path.is_file():
        return None
    storage = _storage(path)
    if config.study in {s.study_name for s in storage.get_all_studies()}:
        _refuse_other_options(optuna.load_study(study_name=config.study, storage=storage), config, space.text, path)
    return storage


def _refuse_other_options(study: optuna.Study, config: RunConfig, space_text: str | None, path: Path) -> None:
    """UsageError unless ``config`` may continue ``study``: the same options of its identity, the
    same space text."""
    stored = study.user_attrs.get(attrs.IDENTITY)
    # A key an older study did not record counts as that option's default.
    defaults = RunConfig(space=config.space).identity()
    if stored is not None and any(stored.get(k, defaults[k]) != v for k, v in config.identity().items()):
        diff = ", ".join(f"{k}={stored.get(k, defaults[k])!r} (asked {v!r})"
                         for k, v in config.identity().items() if stored.get(k, defaults[k]) != v)
        raise UsageError(f"study {config.study!r} in {path.parent} was run with {diff}; "
                         f"pass the same options or choose a new --study")
    stored_text = study.user_attrs.get(attrs.SPACE)
    if stored_text and space_text and stored_text != space_text:
        changed = differences(yaml.safe_load(stored_text), yaml.safe_load(space_text))
        raise UsageError(f"study {config.study!r} in {path.parent} began with another space {config.space}: "
                         f"{'; '.join(changed[:5]) or 'its text'}{' ...' if len(changed) > 5 else ''}; restore "
                         f"the space or choose a new --study")


def load_study(directory: str, name: str) -> optuna.Study:
    check_study_name(name)
    path = journal_path(directory, name)
    if not path.exists():
        raise UsageError(f"no study {name!r} in {directory}/ (looked for {path})")
    storage = _storage(path)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        raise UsageError(f"study file {path} holds no study named {name!r}") from None


def study_config(study: optuna.Study) -> RunConfig:
    """The configuration a study was last run with (stored by ``search run``)."""
    stored = study.user_attrs.get(attrs.CONFIG)
    if stored is None:
        raise UsageError(f"study {study.study_name!r} holds no run configuration; was it made by `search run`?")
    space_text = study.user_attrs.get(attrs.SPACE)
    if space_text and is_space_file(stored.get("space", "")):
        remember(stored["space"], space_text)  # read where the file is gone
    known = {f.name for f in dataclasses.fields(RunConfig)} - {"objectives"} | set(BUDGETS)  # others': ignored
    values = budgets_from({k: v for k, v in stored.items() if k in known}, f"study {study.study_name!r}")
    return RunConfig(**values, objectives=tuple(stored["objectives"]))
