"""Where a study lives (an Optuna journal file under ``<dir>/<study>/``) and its sampler."""
from __future__ import annotations

from pathlib import Path

import optuna

from .config import CONFIG_FILE, OBJECTIVES, RunConfig, save_config
from .errors import UsageError
from .hybrid import HybridSampler, Screen

JOURNAL = "journal.log"


def journal_path(directory: str, study: str) -> Path:
    return Path(directory) / study / JOURNAL


def _storage(path: Path) -> optuna.storages.JournalStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(str(path)))


def make_sampler(name: str, seed: int, screen: Screen | None = None) -> optuna.samplers.BaseSampler:
    """``screen`` (what is known of a candidate before training) is needed by ``hybrid`` only."""
    s = optuna.samplers
    if name == "hybrid":
        if screen is None:
            raise UsageError("the hybrid sampler needs a screen of the space (search.hybrid.screen_for)")
        return HybridSampler(screen, seed=seed)
    if name == "nsga2":
        return s.NSGAIISampler(population_size=20, seed=seed)
    if name == "nsga3":
        return s.NSGAIIISampler(population_size=20, seed=seed)
    if name == "tpe":
        return s.TPESampler(multivariate=True, seed=seed)
    if name == "gp":
        return s.GPSampler(seed=seed)
    if name == "botorch":
        from optuna_integration import BoTorchSampler

        return BoTorchSampler(seed=seed)
    if name == "random":
        return s.RandomSampler(seed=seed)
    raise UsageError(f"unknown sampler {name!r}")


def open_study(config: RunConfig, screen: Screen | None = None) -> optuna.Study:
    """Create the study, or continue it when it exists with the same space, data and objectives."""
    path = journal_path(config.dir, config.study)
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = _storage(path)
    if existed:
        study = optuna.load_study(study_name=config.study, storage=storage)
        stored = study.user_attrs.get("identity")
        # A key an older study did not record counts as that option's default.
        defaults = RunConfig(space=config.space).identity()
        if stored is not None and any(stored.get(k, defaults[k]) != v for k, v in config.identity().items()):
            diff = ", ".join(f"{k}={stored.get(k, defaults[k])!r} (asked {v!r})"
                             for k, v in config.identity().items() if stored.get(k, defaults[k]) != v)
            raise UsageError(f"study {config.study!r} in {path.parent} was run with {diff}; "
                             f"pass the same options or choose a new --study")
    else:
        study = optuna.create_study(study_name=config.study, storage=storage,
                                    directions=[OBJECTIVES[o] for o in config.objectives])
        study.set_metric_names(list(config.objectives))
        study.set_user_attr("identity", config.identity())
    study.set_user_attr("config", config.as_dict())
    save_config(config, path.parent / CONFIG_FILE)
    # A continued study reseeds from its size, so a seeded sampler does not replay its first asks.
    study.sampler = make_sampler(config.sampler, config.seed + len(study.trials), screen)
    return study


def load_study(directory: str, name: str) -> optuna.Study:
    path = journal_path(directory, name)
    if not path.exists():
        raise UsageError(f"no study {name!r} in {directory}/ (looked for {path})")
    return optuna.load_study(study_name=name, storage=_storage(path))
