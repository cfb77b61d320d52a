"""Every trial as an MLflow run, logged from the driver process (so also when trials run on Ray).

One experiment per study name; in it one parent run per study (tag ``role=study``) and one child
run per finished trial (tag ``role=trial``, ``mlflow.parentRunId``). Runs are found again by the
tags ``study_uid`` and ``trial``, so logging is idempotent: ``search sync`` after a search, or
twice, completes and updates runs and never duplicates them.

The Optuna study is the source of truth and MLflow a view of it: on the first MLflow error the
tracker warns once and stops for the rest of that run; ``search sync`` fills MLflow in later.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVarTuple

import optuna

if TYPE_CHECKING:
    from datetime import datetime

    from mlflow.tracking import MlflowClient
    from sqlalchemy.engine.interfaces import DBAPIConnection
    from sqlalchemy.pool import ConnectionPoolEntry

from hwnas.evaluators.metrics import REGISTRY, Metrics
from hwnas.spaces import GenotypeError, parse

from .. import attrs
from ..config import RunConfig
from ..errors import UsageError
from ..pareto import front_figure, front_rows, rejected_count, study_hypervolume
from ..report import render
from ..study import journal_path

_Args = TypeVarTuple("_Args")  # what Tracker._guard passes on to its function
URI_ENV = "MLFLOW_TRACKING_URI"
# A dead server must not stall a search: MLflow's defaults are 7 retries with exponential backoff
# and a 120 s timeout per request. No telemetry, no INFO lines on stderr. A user's own settings win.
MLFLOW_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "MLFLOW_LOGGING_LEVEL": "WARNING"}
TS = optuna.trial.TrialState
STATUS = {TS.COMPLETE: "FINISHED", TS.FAIL: "FAILED", TS.PRUNED: "KILLED"}  # trial state -> run status


def default_store() -> Path:
    """The repository's ``mlflow/`` folder when running from a checkout, else ``./mlflow``."""
    repo = Path(__file__).resolve().parents[2]
    return repo / "mlflow" if (repo / "mlflow" / "README.md").is_file() else Path("mlflow").resolve()


@dataclass(frozen=True)
class Store:
    uri: str
    artifact_root: Path | None  # where new experiments keep artifacts; None: MLflow decides

    @classmethod
    def resolve(cls) -> Store:
        """``MLFLOW_TRACKING_URI`` when set, else sqlite in :func:`default_store`. A sqlite store
        keeps artifacts in ``artifacts/`` beside its database."""
        uri = os.environ.get(URI_ENV, "").strip()
        if not uri:
            root = default_store()
            return cls(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
        if uri.startswith("sqlite:///"):
            return cls(uri, Path(uri[len("sqlite:///"):]).resolve().parent / "artifacts")
        return cls(uri, None)

    @property
    def server(self) -> bool:
        """A tracking server, with its own UI (rather than a database `search ui` can serve)."""
        return self.uri.startswith(("http://", "https://", "databricks"))

    def runs_page(self, study: str | None) -> str:
        """The UI's address (after the host) of a study's runs table: ``study``'s experiment, or the
        one updated last. MLflow 3's UI otherwise opens on its GenAI view, an empty traces page."""
        if self.uri.startswith("sqlite:///") and not Path(self.uri[len("sqlite:///"):]).is_file():
            if study:
                raise UsageError(f"no MLflow experiment {study!r}: the store {self.uri} is empty; run a search first")
            return "/#/experiments"
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        if study:
            exp = client.get_experiment_by_name(study)
            if exp is None:
                raise UsageError(f"no MLflow experiment {study!r} in {self.uri}; `search sync --study {study}` "
                                 f"logs a study's trials")
        else:
            ids = [e.experiment_id for e in client.search_experiments(max_results=1000) if e.name != "Default"]
            if not ids:
                return "/#/experiments"
            latest = client.search_runs(ids, max_results=1, order_by=["attributes.start_time DESC"])
            return f"/#/experiments/{latest[0].info.experiment_id if latest else ids[0]}/runs"
        return f"/#/experiments/{exp.experiment_id}/runs"


def _fast_sqlite(db: Path) -> None:
    """WAL journal with synchronous=NORMAL on this process's connections to ``db``: a commit then
    costs no fsync (logging a trial took 99 instead of 231 ms on a loaded machine), the database
    cannot be corrupted by a crash (at worst the last commits are lost, and `search sync` restores
    them from the study), and a running `search ui` reads while the search writes."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    def on_connect(conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        if isinstance(conn, sqlite3.Connection) and any(
                row[2] and Path(row[2]).resolve() == db for row in conn.execute("PRAGMA database_list")):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")

    if db not in _FAST_SQLITE:
        _FAST_SQLITE.add(db)
        event.listen(Engine, "connect", on_connect)


_FAST_SQLITE: set[Path] = set()  # databases with a listener in this process


def _ms(when: datetime | None) -> int:
    return int((when.timestamp() if when else time.time()) * 1000)


@dataclass(frozen=True)
class Logged:
    """What MLflow holds for one trial."""
    run_id: str
    finished: bool  # the run was fully logged (its status is no longer RUNNING)
    pareto: str | None


class Tracker:
    """Logs one study. ``error`` holds the first MLflow failure; after it every call does nothing."""

    def __init__(self, study: optuna.Study, config: RunConfig, warn: bool = True,
                 stream: TextIO = sys.stderr) -> None:
        for key, value in MLFLOW_DEFAULTS.items():
            os.environ.setdefault(key, value)
        self.store = Store.resolve()
        self.config = config
        self.warn, self.stream = warn, stream
        self.error: str | None = None
        self.created = self.repaired = self.relabelled = 0  # for `search sync`'s report
        self._client: MlflowClient | None = None  # set by _open; every later call runs after it
        self._runs: dict[int, Logged] = {}
        self._guard(self._open, study)

    @property
    def _mlflow(self) -> MlflowClient:
        if self._client is None:
            raise RuntimeError("the MLflow client is used before it was opened")
        return self._client

    # -- the observer: called by the loop ------------------------------------------------------
    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        """After a trial is told COMPLETE or FAIL: log its run, then relabel the front."""
        def log() -> None:
            front = self._front(study)
            self._log_trial(trial, front)
            self._relabel(front)
        self._guard(log)

    def close(self, study: optuna.Study, completed: bool = True) -> None:
        """At the end of a run (and for `search sync`): log every finished trial MLflow lacks,
        relabel the front, and give the parent run the front, its plot and the hypervolume."""
        def log() -> None:
            front = self._front(study)
            for t in study.get_trials(deepcopy=False, states=tuple(STATUS)):
                self._log_trial(t, front)
            self._relabel(front)
            self._log_study(study, front, "FINISHED" if completed else "KILLED")
        self._guard(log)

    # -- internals -------------------------------------------------------------------------------
    def _guard(self, fn: Callable[[*_Args], object], *args: *_Args) -> None:
        if self.error is not None:
            return
        try:
            fn(*args)
        except Exception as e:  # any MLflow fault: the search goes on without it
            self.error = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
            if self.warn:
                print(f"search: warning: cannot log to MLflow at {self.store.uri} ({self.error}); "
                      f"MLflow logging stops for this run, the study keeps every trial: "
                      f"`search sync --study {self.config.study} --dir {self.config.dir}` fills MLflow in later",
                      file=self.stream, flush=True)

    def _open(self, study: optuna.Study) -> None:
        from mlflow.tracking import MlflowClient

        if self.store.uri.startswith("sqlite:///"):
            db = Path(self.store.uri[len("sqlite:///"):]).resolve()
            db.parent.mkdir(parents=True, exist_ok=True)
            _fast_sqlite(db)
        self._client = c = MlflowClient(self.store.uri)
        name = study.study_name
        exp = c.get_experiment_by_name(name)
        if exp is None:
            location = None
            if self.store.artifact_root:
                self.store.artifact_root.mkdir(parents=True, exist_ok=True)
                location = (self.store.artifact_root / name).as_uri()
            self._experiment = c.create_experiment(name, artifact_location=location)
        else:
            self._experiment = exp.experiment_id
            if exp.lifecycle_stage == "deleted":
                c.restore_experiment(exp.experiment_id)
        self._uid = study.user_attrs.get(attrs.MLFLOW_UID)
        if self._uid is None:
            self._uid = uuid.uuid4().hex
            study.set_user_attr(attrs.MLFLOW_UID, self._uid)
        parent: str | None = None
        token = None
        while True:  # every run of this study, in pages
            page = c.search_runs([self._experiment], f"tags.study_uid = '{self._uid}'",
                                 max_results=1000, page_token=token)
            for run in page:
                tags = run.data.tags
                if tags.get("role") == "study":
                    parent = run.info.run_id
                elif "trial" in tags:
                    self._runs[int(tags["trial"])] = Logged(run.info.run_id, run.info.status != "RUNNING",
                                                            tags.get("pareto"))
            token = page.token
            if not token:
                break
        cfg = self.config
        if parent is None:
            parent = c.create_run(self._experiment, run_name=name, tags={
                "role": "study", "study": name, "study_uid": self._uid}).info.run_id
        else:
            c.update_run(parent, status="RUNNING")
        self._parent: str = parent
        from mlflow.entities import Param, RunTag

        # What makes the study (fixed for its life) as params; what a run may change as tags.
        c.log_batch(self._parent, params=[Param(k, str(v)) for k, v in self._identity().items()], tags=[
            RunTag(k, str(v)) for k, v in {"sampler": cfg.sampler, "trials": cfg.trials, "seed": cfg.seed,
                                           "journal": str(journal_path(cfg.dir, name).resolve())}.items()])
        space_text = study.user_attrs.get(attrs.SPACE)
        if space_text:  # the space the study searched, as a file a user can run again
            c.log_text(self._parent, space_text, "space.yaml")

    def _identity(self) -> dict:
        return {k: ",".join(v) if isinstance(v, list) else v for k, v in self.config.identity().items()}

    @staticmethod
    def _front(study: optuna.Study) -> set[int]:
        # The trials `search front` prints (one per genotype), so the tags match that command.
        return {row["trial"] for row in front_rows(study)}

    def _log_trial(self, t: optuna.trial.FrozenTrial, front: set[int]) -> None:
        from mlflow.entities import Metric, Param, RunTag

        known = self._runs.get(t.number)
        if t.state not in STATUS or (known and known.finished):
            return
        c, cfg, ta = self._mlflow, self.config, t.user_attrs
        if known:
            run_id = known.run_id
            self.repaired += 1  # a run left half-logged (a crash while logging)
        else:
            run_id = c.create_run(self._experiment, start_time=_ms(t.datetime_start), run_name=f"trial-{t.number:04d}",
                                  tags={"role": "trial", "study": cfg.study, "study_uid": self._uid,
                                        "trial": str(t.number), "mlflow.parentRunId": self._parent}).info.run_id
            self.created += 1
        pareto = "true" if t.number in front else "false"
        tags = {"state": t.state.name, "sampler": cfg.sampler, "pareto": pareto}
        tags.update({k: str(ta[k]) for k in (attrs.DUPLICATE_OF, attrs.DEVICE, attrs.TRAIN_NODE, attrs.RETRIES)
                     if k in ta})
        if attrs.FAIL_REASON in ta:
            tags[attrs.FAIL_REASON] = str(ta[attrs.FAIL_REASON])[:5000]
        if t.state == TS.PRUNED:  # stopped early: the rung it was judged at
            tags["stopped_at_rung"] = str(Metrics.from_attrs(ta).stopped_epoch)
        if attrs.REJECTED in ta:  # over a budget: never trained, its cheap figures only
            tags[attrs.REJECTED] = str(ta[attrs.REJECTED])[:5000]
        # tags, not params: a budget may change between runs of one study
        tags.update({b.key: f"{b.limit:g}" for b in cfg.budgets})
        figures = Metrics.from_attrs(ta).values()
        tags.update({k: v for k, v in figures.items() if isinstance(v, str)})  # where it ran, in what runtime
        now = _ms(t.datetime_complete)
        genotype = ta.get(attrs.GENOTYPE, "")
        params = {attrs.GENOTYPE: genotype, **t.params, "dataset": cfg.dataset, "space": cfg.space,
                  "runtime": cfg.runtime,
                  **{f"recipe.{k}": v for k, v in dataclasses.asdict(cfg.recipe()).items()}}
        metrics = [Metric(k, float(v), now, 0) for k, v in figures.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
        # a per-epoch list as the metric's history, step = epoch (MLflow's chart of the run)
        metrics += [Metric(k, float(v), now, epoch) for k, values in figures.items() if REGISTRY[k].history
                    and isinstance(values, list) for epoch, v in enumerate(values, 1)]
        c.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                    tags=[RunTag(k, v) for k, v in tags.items()])
        if genotype:
            c.log_dict(run_id, _document(genotype), "genotype.json")
            c.log_text(run_id, ta.get(attrs.MODEL_SUMMARY) or _no_summary(genotype, t), "model_summary.txt")
        c.set_terminated(run_id, STATUS[t.state], end_time=now)
        self._runs[t.number] = Logged(run_id, True, pareto)

    def _relabel(self, front: set[int]) -> None:
        """Keep ``pareto`` true on exactly the front's runs: a new trial can push others off it."""
        for number, logged in list(self._runs.items()):
            want = "true" if number in front else "false"
            if logged.pareto != want:
                self._mlflow.set_tag(logged.run_id, "pareto", want)
                self._runs[number] = dataclasses.replace(logged, pareto=want)
                self.relabelled += 1

    def _log_study(self, study: optuna.Study, front: set[int], status: str) -> None:
        from mlflow.entities import Metric

        c = self._mlflow
        complete = attrs.trained(study.get_trials(deepcopy=False, states=(TS.COMPLETE,)))
        failed = study.get_trials(deepcopy=False, states=(TS.FAIL,))
        now, step = int(time.time() * 1000), len(complete)
        c.log_batch(self._parent, metrics=[
            Metric("hypervolume", study_hypervolume(study), now, step),
            Metric("complete_trials", len(complete), now, step),
            Metric("over_budget_trials", rejected_count(study), now, step),
            Metric("failed_trials", len(failed), now, step),
            Metric("stopped_trials", len(study.get_trials(deepcopy=False, states=(TS.PRUNED,))), now, step),
            Metric("front_size", len(front), now, step)])
        c.log_dict(self._parent, self.config.as_dict(), "config.json")
        c.log_text(self._parent, render(front_rows(study), "csv") + "\n", "front.csv")
        c.log_figure(self._parent, front_figure(study, front), "pareto.png")
        c.set_terminated(self._parent, status)


def _document(genotype: str) -> dict:
    """The genotype as JSON: its text and its fields (read from the text: no data set needed)."""
    try:
        return {"text": genotype, **dataclasses.asdict(parse(genotype))}
    except GenotypeError as e:  # a table's cell, or text from elsewhere
        return {"text": genotype, "error": str(e)}


def _no_summary(genotype: str, trial: optuna.trial.FrozenTrial) -> str:
    """For a trial that carries no summary (it failed before building, a table's row, or a study
    written before trials kept one): what is known of it."""
    figures = Metrics.from_attrs(trial.user_attrs).values()
    lines = [f"genotype: {genotype}", *(f"{k}: {REGISTRY[k].show(v)}" for k, v in figures.items()),
             "", f"(no model summary: trial {trial.number} is {trial.state.name} and did not record one)"]
    if attrs.FAIL_REASON in trial.user_attrs:
        lines.append(f"fail reason: {trial.user_attrs[attrs.FAIL_REASON]}")
    return "\n".join(lines) + "\n"
