"""What a run is asked to do: objectives and the run configuration.

``RunConfig`` is the one place run options live. Each field is one option: ``--flag-name`` on the
command line (built by ``add_run_options``) and ``flag_name:`` in a ``--config`` YAML file (read by
``read_config_file``). A new option is one new field with ``option(default, help)``.
Precedence: the field's default < the config file < command-line flags.
"""
from __future__ import annotations

import argparse
import math
import re
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hwnas.evaluators.budgets import Budget
from hwnas.evaluators.metrics import BUDGETS, DEFAULT_OBJECTIVES, OBJECTIVES, REGISTRY

from .early_stopping import DEFAULT_METHOD, METHODS, default_method, early_stop_problem, rungs_of
from .errors import UsageError
from .samplers import DEFAULT_SAMPLER, SAMPLERS

if TYPE_CHECKING:
    from hwnas.evaluators import Recipe
    from hwnas.spaces import Space

CONFIG_FILE = "config.yaml"  # the resolved configuration, saved next to the study's journal
SEED_LIMIT = 2**32
CONFIG_FILE_LIMIT = 1_000_000  # bytes: a configuration is a few hundred
STUDY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def check_study_name(name: str) -> None:
    """A study name is a folder name and goes into generated code: letters, digits, '.', '-' and
    '_' only (no path, no quote, no control character), at most 100, not starting with '.'."""
    if not STUDY_NAME.fullmatch(name):
        raise UsageError(f"bad study name {_cut(name)}: use letters, digits, '.', '-' and '_' (at most 100, "
                         f"not starting with '.')")


def _cut(value: object, limit: int = 60) -> str:
    """A value as an error line echoes it: whole when short, its start and length when not."""
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def parse_objectives(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise UsageError(f"--objectives is empty; choose from {', '.join(OBJECTIVES)}")
    for n in names:
        if n not in OBJECTIVES:
            raise UsageError(f"unknown objective {n!r}; choose from {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise UsageError(f"objective listed twice in {text!r}")
    return names


def option(default: Any, help: str, *, metavar: str | None = None, identity: bool = False,
           budgets: bool = False) -> Any:
    """A run option: its default, the help line --help and docs/cli.md show, and whether it is part
    of a study's identity (trials run with another value do not belong to the same study).
    ``budgets``: the field holding the budgets, one flag and key per budget (``BUDGETS``)."""
    return field(default=default, metadata={"help": help, "metavar": metavar, "identity": identity,
                                            "budgets": budgets})


def budget_help(key: str) -> str:
    metric = REGISTRY[BUDGETS[key]]
    unit = f" ({metric.unit})" if metric.unit else ""
    bound = "at most" if key.startswith("max_") else "at least"
    return f"only train candidates whose {metric.name}{unit} is {bound} this: {metric.help}"


def budgets_from(values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` with its budget keys (max_latency_ms: 5) gathered into ``budgets``; each a
    positive number."""
    out = {k: v for k, v in values.items() if k not in BUDGETS}
    budgets = [] if "budgets" not in values else list(values["budgets"])
    for key in BUDGETS:
        if values.get(key) is None:
            continue
        value = values[key]
        flag = "--" + _flag(key)
        try:
            limit = float(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            raise UsageError(f"bad {flag if where == 'flags' else key + ' in ' + where}: {_cut(value)} is not "
                             f"a number") from None
        if not limit > 0 or not math.isfinite(limit):
            raise UsageError(f"{flag} must be a positive number, got {_cut(value)}")
        budgets = [b for b in budgets if b.key != key] + [Budget(key, limit)]
    if budgets:
        out["budgets"] = tuple(sorted(budgets, key=lambda b: list(BUDGETS).index(b.key)))
    return out


@dataclass(frozen=True)
class RunConfig:
    space: str = option("mobile", "search space: a built-in (`search spaces`) or a space file NAME.yaml "
                                  "(docs/spaces.md)", identity=True)
    dataset: str = option("", "default: the space's first. mobile: digits, fashion-mnist, cifar10 or folder:PATH "
                              "(one sub-folder of images per class); nb201: cifar10, cifar100 or imagenet "
                              "(ImageNet16-120), rows of the NAS-Bench-201 table", metavar="NAME", identity=True)
    data_dir: str = option("", "where the data set's files are: fashion-mnist's idx files (default "
                               "/usr/share/datasets/fashion-mnist), cifar10's cifar-10-batches-py", metavar="DIR")
    trials: int = option(200, "trials the study should hold that ended (trained to the end, or stopped early under "
                              "--early-stop); running again continues up to this many")
    sampler: str = option(DEFAULT_SAMPLER, f"one of {', '.join(SAMPLERS)}")
    objectives: tuple[str, ...] = option((), f"comma-separated, any of {', '.join(OBJECTIVES)} that the space "
                                             f"measures (default: {','.join(DEFAULT_OBJECTIVES)}, less what it does "
                                             f"not: nb201 has no macs)", metavar="LIST", identity=True)
    study: str = option("", "study name (default: the space's name)", metavar="NAME")
    dir: str = option("runs", "where studies live", metavar="DIR")
    epochs: int = option(10, "training epochs per trial", identity=True)
    train_subset: int = option(0, "train each trial on this many training images, a fixed seeded "
                                  "subset (0 = all)", metavar="N", identity=True)
    batch_size: int = option(64, "training batch size", metavar="N", identity=True)
    resolution: int = option(0, "resize images to N x N before training (0 = as stored); the space "
                                "scales its strides to it", metavar="N", identity=True)
    augment: bool = option(True, "the data set's standard augmentation (random crop with padding and "
                                 "horizontal flip for fashion-mnist and cifar10; none for digits and folders)",
                           identity=True)
    # "": not given; resolved to DEFAULT_METHOD where a rung fits below --epochs on a trained space, else none
    early_stop: str = option("", f"{' or '.join(METHODS)}: mo-asha stops trials early (at each rung, epochs "
                                 f"--min-epochs x --eta^k, a trial goes on only in the top 1/eta of its rung by "
                                 f"non-dominated sorting on accuracy and the cheap objectives; "
                                 f"docs/early-stopping.md) (default: {DEFAULT_METHOD} where a rung fits below "
                                 f"--epochs on a trained space, else none)", metavar="METHOD")
    min_epochs: int = option(1, "with --early-stop mo-asha: the first rung, in epochs")
    eta: int = option(3, "with --early-stop mo-asha: each rung keeps 1/eta of the trials that reach it, and the "
                         "next rung is eta times as many epochs")
    seed: int = option(0, "seed of the sampler and of training, 0 to 2^32 - 1")
    precision: str = option("fp32", "training arithmetic: fp32, or bf16 (CUDA autocast, --device cuda; weights stay "
                                    "fp32, latency is timed in fp32)", identity=True)
    exits: bool = option(False, "also search early-exit heads", identity=True)
    exit_tolerance: float = option(0.01, "validation accuracy (a fraction) the early-exit threshold may cost "
                                         "against the full depth", metavar="F", identity=True)
    device: str = option("cpu", "where trials train and are timed: cpu, cuda or cuda:N", identity=True)
    runtime: str = option("torch", "what latency, throughput and file size are measured in: torch, onnxruntime, "
                                   "onnxruntime-int8 (static int8, calibrated; its accuracy is the trial's) or "
                                   "executorch (XNNPACK; pip install \"hwnas[executorch]\")",
                          identity=True)
    throughput_batch: int = option(32, "batch size of the throughput measurement", metavar="N", identity=True)
    latency_table: str = option("", "a table space (nb201): the device, as a CSV of arch,latency_ms for every cell "
                                    "(shared/data/nb201-devices has four); its latency replaces the benchmark's",
                                metavar="FILE.csv", identity=True)
    latency_on: str | None = option(None, "time every candidate on the Ray node that advertises this custom "
                                          "resource (a device that joined with `ray start --address HEAD:PORT "
                                          "--resources '{\"NAME\": 1}'`), one at a time, while trials train on "
                                          "the other nodes; needs --ray-address", metavar="RESOURCE", identity=True)
    predict_latency: bool | None = option(None, "the hybrid sampler screens candidates on latency predicted by a "
                                                "model fitted on the latencies measured so far on the device, and "
                                                "only the candidate it picks is timed there (default: on with "
                                                "--latency-on; with --latency-on or --latency-table only)")
    # Not part of the identity: tightening a budget on a running study is natural; the front is
    # always read against the budgets of the latest run (search.pareto).
    budgets: tuple[Budget, ...] = option((), "bounds on costs known before training, one flag each "
                                             "(--max-latency-ms and the others below)", budgets=True)
    # 1 by default: small nets at batch 1 run as fast on one thread here, and a one-thread timing is
    # not upset by the search's own processes on the other cores (benchmarks/ray_throughput.py)
    threads: int = option(1, "CPU threads for the latency measurements (0 = all cores)", metavar="N")
    # where trials run (not part of a study's identity); None = the default
    workers: int | None = option(None, "trials in flight at once (default: --device cuda, one per --gpus-per-trial "
                                       "share of the GPUs; cpu, one per CPU core; 1 on a lone machine runs in this "
                                       "process)", metavar="N")
    ray_address: str | None = option(None, "join this Ray cluster (HOST:PORT; default $RAY_ADDRESS, else a local "
                                           "Ray started for the run)", metavar="HOST:PORT")
    cpus_per_trial: int | None = option(None, "CPUs (= torch threads) per trial (default: cores / workers)",
                                        metavar="N")
    gpus_per_trial: float | None = option(None, "with --device cuda, the share of a GPU each trial holds (default 1; "
                                                "0.25 packs four trials on a GPU; above 1, whole GPUs)", metavar="G")

    def __post_init__(self) -> None:
        # the checks that need torch come last: a mistyped number or name is refused at once
        from hwnas.spaces import SPACES, SpaceFileError, get_space, is_space_file

        if is_space_file(self.space):  # absolute: the same file from any working directory is the same study
            object.__setattr__(self, "space", str(Path(self.space).expanduser().absolute()))
        if not self.study:  # resolved, so the saved config is explicit; a file's study is named after it
            object.__setattr__(self, "study", Path(self.space).stem if is_space_file(self.space) else self.space)
        if self.latency_table:  # absolute: the same file from any working directory is the same study
            object.__setattr__(self, "latency_table", str(Path(self.latency_table).expanduser().absolute()))
        object.__setattr__(self, "objectives", tuple(self.objectives))
        if self.objectives:  # their names now; whether the space measures them once it is read
            parse_objectives(",".join(self.objectives))
        for name, value in (("--workers", self.workers), ("--cpus-per-trial", self.cpus_per_trial)):
            if value is not None and value <= 0:
                raise UsageError(f"{name} must be a positive integer, got {value}")
        if self.gpus_per_trial is not None and not self.gpus_per_trial >= 0:
            raise UsageError(f"--gpus-per-trial must be a number >= 0, got {self.gpus_per_trial}")
        if self.gpus_per_trial is not None and self.gpus_per_trial > 1 and self.gpus_per_trial % 1:
            # Ray places a fraction of one GPU, or whole GPUs
            raise UsageError(f"--gpus-per-trial above 1 must be a whole number, got {self.gpus_per_trial:g}")
        if self.gpus_per_trial == 0 and self.device != "cpu":
            raise UsageError(f"--gpus-per-trial 0 leaves trials no GPU, but they train on --device {self.device}; "
                             f"give a share such as 0.25, or --device cpu")
        if self.gpus_per_trial and self.device == "cpu":
            raise UsageError(f"--gpus-per-trial {self.gpus_per_trial:g} gives trials a GPU, but they train on "
                             f"--device cpu; add --device cuda")
        for name in ("trials", "epochs", "batch_size"):
            if getattr(self, name) <= 0:
                raise UsageError(f"--{_flag(name)} must be a positive integer, got {getattr(self, name)}")
        if self.threads > 1024:
            raise UsageError(f"--threads must be at most 1024, got {self.threads}")
        for name in ("train_subset", "resolution", "threads"):
            if getattr(self, name) < 0:
                raise UsageError(f"--{_flag(name)} must be 0 or a positive integer, got {getattr(self, name)}")
        if not 0 <= self.seed < SEED_LIMIT:  # numpy's and torch's generators take no more
            raise UsageError(f"--seed must be an integer from 0 to {SEED_LIMIT - 1}, got {_cut(self.seed)}")
        problem = early_stop_problem(self.early_stop, self.epochs, self.min_epochs, self.eta)
        if problem:
            raise UsageError(problem)
        if 0 < self.resolution < 4:
            raise UsageError(f"--resolution must be 0 (as stored) or at least 4, got {self.resolution}")
        if self.space not in SPACES and not is_space_file(self.space):
            raise UsageError(f"unknown space {self.space!r}; available: {', '.join(SPACES)}, or a space file "
                             f"NAME.yaml")
        if self.sampler not in SAMPLERS:
            raise UsageError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        from hwnas.evaluators.runtimes import runtime_problem

        problem = runtime_problem(self.runtime)
        if problem:
            raise UsageError(problem)
        if self.predict_latency is None:  # a device that times one model at a time: predict by default
            object.__setattr__(self, "predict_latency", self.latency_on is not None and self.sampler == "hybrid")
        elif self.predict_latency and not (self.latency_on or self.latency_table):
            raise UsageError("--predict-latency predicts a device's latency: give --latency-on RESOURCE (trained "
                             "spaces) or --latency-table FILE.csv (nb201)")
        elif self.predict_latency and self.sampler != "hybrid":
            raise UsageError(f"--predict-latency is how the hybrid sampler screens; sampler {self.sampler} does "
                             f"not screen candidates (use --sampler hybrid)")
        if self.latency_on is not None and self.exits:  # the exits' dynamic latency is timed after training
            raise UsageError("--exits is not timed on a --latency-on device yet; drop one of them")
        if self.latency_on is not None and not self.latency_on.strip():
            raise UsageError("--latency-on needs the name of a custom Ray resource, got an empty one")
        if self.runtime != "torch" and self.exits:
            raise UsageError("--exits is timed in torch only; drop --exits or use --runtime torch")
        if self.throughput_batch <= 0 or self.throughput_batch > 4096:
            raise UsageError(f"--throughput-batch must be from 1 to 4096, got {self.throughput_batch}")
        if not 0.0 <= self.exit_tolerance < 1.0:
            raise UsageError(f"--exit-tolerance must be in [0, 1) (a fraction of accuracy), got {self.exit_tolerance}")
        try:
            space = get_space(self.space)
        except SpaceFileError as e:
            raise UsageError(str(e)) from None
        self._resolve_for_space(space)
        check_study_name(self.study)
        from hwnas.evaluators.latency import device_problem
        from hwnas.evaluators.training import precision_problem

        problem = device_problem(self.device) or precision_problem(self.precision, self.device)
        if problem:
            raise UsageError(problem)

    def _resolve_for_space(self, space: Space) -> None:
        """Data set, objectives and early stopping: the space's defaults where not given, and only
        what its evaluator (evaluators.evaluation: trained, or a table) offers."""
        from hwnas.evaluators.data import DataError
        from hwnas.evaluators.evaluation import DATASETS, METRICS, check_dataset
        from hwnas.spaces import Evaluated

        kind = space.evaluated
        if not self.dataset:
            object.__setattr__(self, "dataset", DATASETS[kind][0])
        if not self.objectives:
            object.__setattr__(self, "objectives", tuple(o for o in DEFAULT_OBJECTIVES if o in METRICS[kind]))
        for name in self.objectives:
            if name not in METRICS[kind]:
                raise UsageError(f"objective {name!r} is not measured in space {self.space}; choose from "
                                 f"{', '.join(o for o in OBJECTIVES if o in METRICS[kind])}")
        try:
            check_dataset(kind, self.dataset)
        except DataError as e:
            raise UsageError(f"space {self.space}: {e}") from None
        if self.exits and not space.supports_exits:
            raise UsageError(f"--exits does not apply to space {self.space}")
        if not self.early_stop:  # resolved, so the saved config says what ran
            object.__setattr__(self, "early_stop", default_method(self.epochs, self.min_epochs, self.eta,
                                                                  kind is Evaluated.TRAINED))
        if self.early_stop != "none" and space.evaluated is not Evaluated.TRAINED:
            raise UsageError(f"--early-stop applies to trained spaces; space {self.space} looks its accuracy up "
                             f"in a table")
        if self.latency_table and space.evaluated is not Evaluated.TABLE:
            raise UsageError(f"--latency-table applies to table spaces (nb201); space {self.space} times its "
                             f"networks (see --runtime)")
        if self.latency_on is not None and space.evaluated is not Evaluated.TRAINED:
            raise UsageError(f"--latency-on applies to trained spaces; space {self.space} reads its latency from "
                             f"its table (a device's table: --latency-table)")
        if self.runtime != "torch" and space.evaluated is not Evaluated.TRAINED:
            raise UsageError(f"--runtime applies to trained spaces; space {self.space} reads its latency from "
                             f"its table")
        for b in self.budgets:
            if b.metric not in METRICS[kind]:
                raise UsageError(f"{b.flag}: space {self.space} does not measure {b.metric}; its budgets: "
                                 f"{', '.join('--' + _flag(k) for k, m in BUDGETS.items() if m in METRICS[kind])}")

    def identity(self) -> dict[str, Any]:
        """What must stay the same for trials to belong to one study: the options marked so."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
                for f in fields(self) if f.metadata["identity"]}

    def recipe(self) -> Recipe:
        """The training recipe of every trial (one place, for the driver and for MLflow)."""
        from hwnas.evaluators import Recipe

        rungs = rungs_of(self.epochs, self.min_epochs, self.eta) if self.early_stop != "none" else ()
        return Recipe(epochs=self.epochs, batch_size=self.batch_size, train_subset=self.train_subset,
                      resolution=self.resolution, augment=self.augment, seed=self.seed, precision=self.precision,
                      rungs=rungs)

    def as_dict(self) -> dict:
        """Plain values, as the config file and the study keep them: a budget as its own key."""
        d = asdict(self)
        d["objectives"] = list(self.objectives)
        del d["budgets"]
        d.update({b.key: b.limit for b in self.budgets})
        return d


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _types() -> dict[str, type]:
    return typing.get_type_hints(RunConfig)


def _base(kind: object) -> tuple[object, bool]:
    """``int | None`` -> (int, True); ``int`` -> (int, False)."""
    args = typing.get_args(kind)
    if type(None) in args and len(args) == 2:
        return next(a for a in args if a is not type(None)), True
    return kind, False


def _coerce(name: str, value: Any, where: str) -> bool | int | float | str | tuple[str, ...] | None:
    """A value from a flag (text) or from YAML (typed) -> the field's type; one clear error if not.
    An optional field (``int | None``) also takes YAML's null."""
    kind, optional = _base(_types()[name])
    if optional and value is None:
        return None
    text = isinstance(value, str)
    if kind is bool:
        if isinstance(value, bool):
            return value
        expected = "true or false"
    elif kind is int:
        if text and value.strip().lstrip("+-").isdigit() and len(value) <= 30:
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        expected = "an integer" + (" of at most 30 digits" if text and value.strip().isdigit() else "")
    elif kind is float:
        try:
            if text or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                return float(value)
        except ValueError:
            pass
        expected = "a number"
    elif kind == tuple[str, ...]:
        if text:
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        expected = "a list of names or comma-separated text"
    else:
        if text:
            return value
        expected = "text"
    raise UsageError(f"bad {where}: {_cut(value)} is not {expected}")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field. Flags default to 'not given' so a config file can fill them."""
    parser.add_argument("--config", metavar="FILE.yaml",
                        help="read options from this YAML file (keys: the option names); flags override it")
    for f in fields(RunConfig):
        if f.metadata["budgets"]:
            for key in BUDGETS:
                parser.add_argument(f"--{_flag(key)}", dest=key, default=argparse.SUPPRESS, metavar="X",
                                    help=budget_help(key))
            continue
        shown = "" if f.default in ("", None, ()) else f" (default: {_shown(f.default)})"
        help_text = f.metadata.get("help", "") + shown
        kind = _base(_types()[f.name])[0]
        if kind is bool:
            parser.add_argument(f"--{_flag(f.name)}", dest=f.name, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(f"--{_flag(f.name)}", dest=f.name, default=argparse.SUPPRESS,
                                metavar=f.metadata.get("metavar") or ("N" if kind is int else f.name.upper()),
                                help=help_text)


def _shown(default: object) -> str:
    if isinstance(default, tuple):
        return ",".join(default)
    if isinstance(default, bool):
        return "on" if default else "off"
    return str(default)


def read_config_file(path: str) -> dict:
    """The options a YAML file sets, typed; unknown keys and malformed files are one-line errors."""
    import yaml

    try:
        with open(path, "rb") as f:  # read up to the limit only: a device or a pipe may never end
            raw = f.read(CONFIG_FILE_LIMIT + 1)
        if len(raw) > CONFIG_FILE_LIMIT:
            raise UsageError(f"--config {path} holds more than {CONFIG_FILE_LIMIT:,} bytes; a configuration file "
                             f"holds at most {CONFIG_FILE_LIMIT:,}")
        text = raw.decode("utf-8")
    except OSError as e:
        raise UsageError(f"cannot read --config {path}: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise UsageError(f"--config {path} is not UTF-8 text (byte {e.start})") from None
    try:
        # An alias repeats a node: nested ones grow a few lines into gigabytes (a "billion laughs"
        # file). Options need none, so any is refused before anything is built.
        if any(isinstance(event, yaml.AliasEvent) for event in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise UsageError(f"--config {path} uses YAML aliases (*name); write each value out")
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "not YAML"
        raise UsageError(f"--config {path} is not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"--config {path} must hold a mapping of option names to values, "
                         f"got {type(data).__name__}")
    names = [f.name for f in fields(RunConfig) if not f.metadata["budgets"]]
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name in BUDGETS:
            values[name] = value
            continue
        if name not in names:
            raise UsageError(f"unknown key {_cut(key)} in --config {path}; known keys: "
                             f"{', '.join(names + list(BUDGETS))}")
        values[name] = _coerce(name, value, f"{_cut(key)} in --config {path}")
    return budgets_from(values, f"--config {path}")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Defaults, then the --config file, then the flags given on the command line."""
    values = read_config_file(args.config) if getattr(args, "config", None) else {}
    given = {key: getattr(args, key) for key in BUDGETS if key in vars(args)}
    for key, raw in given.items():
        if not raw.strip():
            raise UsageError(f"--{_flag(key)} is empty; give a value or leave the flag out")
    values = budgets_from({**values, **given}, "flags")
    for f in fields(RunConfig):
        if f.name in vars(args):
            raw = getattr(args, f.name)
            if isinstance(raw, str) and not raw.strip():  # an empty flag is not the default: say so
                raise UsageError(f"--{_flag(f.name)} is empty; give a value or leave the flag out")
            values[f.name] = raw if isinstance(raw, bool) else _coerce(f.name, raw, f"--{_flag(f.name)}")
    return RunConfig(**values)


def save_config(config: RunConfig, path: Path) -> None:
    """Write the resolved configuration as YAML that ``search run --config`` reads back."""
    import yaml

    header = "# search run --config this-file: the resolved options of this study's latest run\n"
    path.write_text(header + yaml.safe_dump(config.as_dict(), sort_keys=False))
