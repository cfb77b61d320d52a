"""The ``search`` command line."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import time
import warnings
from typing import TYPE_CHECKING, NoReturn

from hwnas.evaluators.metrics import BUDGETS

from .config import add_run_options, config_from_args
from .errors import RunFailure, UsageError
from .export import PICKS
from .report import FORMATS, render

if TYPE_CHECKING:
    import optuna


def _input_shape(text: str) -> tuple[int, int, int]:
    try:
        c, h, w = (int(v) for v in text.lower().split("x"))
        if min(c, h, w) <= 0:
            raise ValueError
        return c, h, w
    except ValueError:
        raise UsageError(f"bad --input {text!r}: give CxHxW with positive integers, e.g. 3x224x224") from None


def _positive(name: str, value: int) -> int:
    if value <= 0:
        raise UsageError(f"{name} must be a positive integer, got {value}")
    return value


def cmd_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)  # before the imports below: a refusal need not wait for torch
    from .loop import run_search
    from .pareto import front_rows, rejected_count
    from .study import load_study

    t0 = time.perf_counter()
    # SIGTERM (a scheduler stopping the job) is handled like Ctrl-C; SIGINT is set too: a shell without
    # job control starts background commands with it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        study = run_search(config)
    except KeyboardInterrupt:
        study = load_study(config.dir, config.study)
        print(f"search: interrupted after {time.perf_counter() - t0:.1f} s: {_ended(study)} "
              f"kept{_over_budget(rejected_count(study))}; "
              f"trials in flight were abandoned and queued to run again. The same command continues. "
              f"Pareto front so far:", file=sys.stderr)
        print(render(front_rows(study), "table"))
        return 130
    print(f"done: {_ended(study)} in {time.perf_counter() - t0:.1f} s{_over_budget(rejected_count(study))}; "
          f"Pareto front:", file=sys.stderr)
    print(render(front_rows(study), "table"))
    return 0


def _ended(study: optuna.Study) -> str:
    """The study's ended trials in words: complete ones, and those stopped early if any."""
    from . import attrs

    trials = study.get_trials(deepcopy=False)
    trained, ended = len(attrs.trained(trials)), len(attrs.ended(trials))
    if ended == trained:
        return f"{trained} complete trials"
    return f"{ended} trials ended ({trained} trained, {ended - trained} stopped early)"


def _over_budget(n: int) -> str:
    return f" ({n} candidate{'s' if n > 1 else ''} over budget {'were' if n > 1 else 'was'} not trained)" if n else ""


def cmd_front(args: argparse.Namespace) -> int:
    from .pareto import budgets_of, front_rows, rejected_count
    from .study import load_study

    study = load_study(args.dir, args.study)
    budgets = budgets_of(study)
    if budgets or rejected_count(study):
        within = ", ".join(f"{b.flag} {b.limit:g}" for b in budgets) or "none now"
        print(f"front within the budgets ({within}){_over_budget(rejected_count(study))}", file=sys.stderr)
    print(render(front_rows(study), args.format))
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    from .observers import Tracker
    from .study import load_study, study_config

    study = load_study(args.dir, args.study)
    config = study_config(study)
    tracker = Tracker(study, config, warn=False)
    tracker.close(study)
    if tracker.error:
        print(f"search: error: cannot log to MLflow at {tracker.store.uri}: {tracker.error}", file=sys.stderr)
        return 1
    print(f"synced study {args.study!r} to experiment {args.study!r} in {tracker.store.uri}; trial runs: "
          f"{tracker.created} created, {tracker.repaired} repaired, {tracker.relabelled} pareto tags changed",
          file=sys.stderr)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    import os

    from .observers import Store

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, got {args.port}")
    store = Store.resolve()
    if store.server:
        print(f"MLFLOW_TRACKING_URI names a tracking server: browse {store.uri}")
        return 0
    import socket

    with socket.socket() as probe:  # another server on the port would answer the URL printed below
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as e:
            raise UsageError(f"cannot serve on 127.0.0.1:{args.port} ({e.strerror or e}); choose another --port") \
                from None
    url = f"http://127.0.0.1:{args.port}"
    page = store.runs_page(args.study)
    print(f"MLflow UI on {store.uri} at {url}{page} (starts in ~10 s; Ctrl-C stops it)", flush=True)
    # Browsing runs needs no background job workers (six processes) nor telemetry.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Become the server, so signals reach it directly.
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", store.uri,
               "--host", "127.0.0.1", "--port", str(args.port), "--workers", "1"]
    if store.artifact_root:
        store.artifact_root.mkdir(parents=True, exist_ok=True)
        command += ["--default-artifact-root", store.artifact_root.as_uri()]
    os.execv(sys.executable, command)



def cmd_export(args: argparse.Namespace) -> int:
    from .config import budgets_from
    from .export import ExportRequest, export

    given = budgets_from({k: getattr(args, k) for k in BUDGETS if getattr(args, k) is not None}, "flags")
    request = ExportRequest(study=args.study, out=args.out, dir=args.dir, trial=args.trial, pick=args.pick,
                            budgets=given.get("budgets", ()), retrain_epochs=args.retrain_epochs,
                            report=args.report)
    print("\n".join(export(request)))
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from hwnas.spaces import NAMED, GenotypeError, parse

    if args.genotype in NAMED:
        genotype = NAMED[args.genotype]
    else:
        try:
            genotype = parse(args.genotype)
        except GenotypeError as e:
            raise UsageError(f"{e} (or name one of: {', '.join(NAMED)})") from None
    shape = _input_shape(args.input)
    # torch from here on: a mistyped genotype or input is refused without it
    from hwnas.evaluators.metrics import REGISTRY
    from hwnas.evaluators.runtimes import runtime_problem
    from hwnas.evaluators.trial import cheap_metrics
    from hwnas.spaces import build
    from hwnas.spaces.limits import TooLarge

    try:
        model = build(genotype, shape, _positive("--classes", args.classes))
    except TooLarge as e:
        raise UsageError(str(e)) from None
    if args.threads < 0:
        raise UsageError(f"--threads must be 0 (all cores) or a positive integer, got {args.threads}")
    problem = runtime_problem(args.runtime)
    if problem:
        raise UsageError(problem)
    figures = cheap_metrics(model, shape, "cpu", args.threads, args.runtime,
                            _positive("--throughput-batch", args.throughput_batch)).values()
    row = {"genotype": str(genotype), "input": "x".join(map(str, shape)), "classes": args.classes, **figures,
           "device": "cpu"}
    if args.format == "json":
        print(json.dumps(row, indent=2))
        return 0
    width = max(map(len, row))
    for k, v in row.items():
        metric = REGISTRY.get(k)
        if metric is None:
            shown = str(v)
        elif metric.style == "millions":
            shown = f"{v / 1e6:.3f} M ({v:,})"
        else:
            shown = metric.show_with_unit(v)
        print(f"{k.ljust(width)}  {shown}")
    return 0


def cmd_spaces(args: argparse.Namespace) -> int:
    from hwnas.spaces import NAMED, SPACES, SpaceFileError, get_space

    if args.show:
        try:
            space = get_space(args.show)
        except (KeyError, SpaceFileError) as e:
            raise UsageError(str(e).strip('"')) from None
        text = space.text
        if text is None:
            raise UsageError(f"space {args.show} is a table ({space.description}); only cell spaces are files")
        sys.stdout.write(text)
        return 0
    from hwnas.evaluators.evaluation import dataset_names  # torch: not for --show

    for name in SPACES:
        space = get_space(name)
        print(f"space {name}: {space.description}")
        print(f"  {'data sets':<14} {dataset_names(space.evaluated)}")
        for choice, options in space.choices().items():
            print(f"  {choice:<14} {', '.join(map(str, options))}")
        with_exits = space.with_exits().choices().keys() - space.choices().keys() if space.supports_exits else ()
        if with_exits:
            print(f"  with --exits: {', '.join(sorted(with_exits))} (0 = no exit there)")
    print("\nyour own space: search run --space FILE.yaml (start from `search spaces --show mobile`; "
          "docs/spaces.md)")
    print("\nnamed genotypes (search inspect NAME):")
    for name, g in NAMED.items():
        print(f"  {name}: {g}")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwnas")
    except PackageNotFoundError:  # run from a checkout without installing it
        return "not installed"


class _OneLineParser(argparse.ArgumentParser):
    """Bad arguments get one line (argparse prints the whole usage first); --help still has it."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="search", description="Hardware-aware neural architecture search.")
    p.add_argument("--version", action="version", version=f"search (hwnas {_version()})")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="run (or continue) a multi-objective search")
    add_run_options(r)
    r.set_defaults(func=cmd_run)

    f = sub.add_parser("front", help="print a study's Pareto front")
    f.add_argument("--study", default="mobile", help="study name (default mobile)")
    f.add_argument("--dir", default="runs", help="where studies live (default runs/)")
    f.add_argument("--format", choices=FORMATS, default="table")
    f.set_defaults(func=cmd_front)

    y = sub.add_parser("sync", help="log a study's trials to MLflow: what is missing is added, nothing duplicated")
    y.add_argument("--study", default="mobile", help="study name (default mobile)")
    y.add_argument("--dir", default="runs", help="where studies live (default runs/)")
    y.set_defaults(func=cmd_sync)

    u = sub.add_parser("ui", help="start the MLflow UI on the tracking store and print its URL")
    u.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default 5000)")
    u.add_argument("--study", help="link to this study's runs (default: the study logged last)")
    u.set_defaults(func=cmd_ui)

    e = sub.add_parser("export", help="write a front member as a standalone PyTorch model.py, weights, "
                       "metadata and ONNX")
    e.add_argument("--study", required=True, help="study name")
    e.add_argument("--dir", default="runs", help="where studies live (default runs/)")
    which = e.add_mutually_exclusive_group()
    which.add_argument("--trial", type=int, help="export this COMPLETE trial")
    which.add_argument("--pick", choices=PICKS, help="which front member: knee (default), max-accuracy, "
                       "min-latency (max-accuracy when a budget is given)")
    for key in BUDGETS:
        e.add_argument(f"--{key.replace('_', '-')}", metavar="X", help=f"only front members within it: {key} as "
                                                                       f"on search run")
    e.add_argument("--retrain-epochs", type=int, help="retrain on train+validation for E epochs before export")
    e.add_argument("--out", required=True, help="folder to create (must not exist, or be empty)")
    e.add_argument("--no-report", dest="report", action="store_false",
                   help="skip report.json/txt (measuring every runtime takes seconds: ExecuTorch lowers the network)")
    e.set_defaults(func=cmd_export)

    i = sub.add_parser("inspect", help="parameters, MACs and measured latency of one genotype")
    i.add_argument("genotype", help="a named genotype (mobilenet_v2, mobilenet_v3_large) or genotype text")
    i.add_argument("--input", default="3x224x224", help="input shape CxHxW (default 3x224x224)")
    i.add_argument("--classes", type=int, default=1000, help="number of classes (default 1000)")
    i.add_argument("--threads", type=int, default=1, help="CPU threads for the latency measurement "
                                                           "(0 = all cores; default 1, as search run)")
    i.add_argument("--runtime", default="torch", help="what it is timed in: torch, onnxruntime or "
                                                      "onnxruntime-int8 (default torch, as search run)")
    i.add_argument("--throughput-batch", type=int, default=32, help="batch size of the throughput "
                                                                    "measurement (default 32)")
    i.add_argument("--format", choices=("table", "json"), default="table")
    i.set_defaults(func=cmd_inspect)

    s = sub.add_parser("spaces", help="list the search spaces, their choices and the named genotypes")
    s.add_argument("--show", metavar="NAME", help="print a space as a space file (a built-in cell space, or a "
                                                  "file, canonical), to start your own from")
    s.set_defaults(func=cmd_spaces)
    return p


def _readable(message: str, head: int = 300, tail: int = 200) -> str:
    """One line of readable length: a message echoing a huge bad value keeps its start (what was
    wrong) and its end (what is accepted)."""
    message = " ".join(message.split())  # one line, whatever the value held
    if len(message) <= head + tail + 40:
        return message
    return f"{message[:head]} [... {len(message) - head - tail:,} characters cut ...] {message[-tail:]}"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"search: error: {_readable(str(e))}", file=sys.stderr)
        return 2
    except RunFailure as e:
        print(f"search: error: {_readable(str(e))}", file=sys.stderr)
        return 1
    except OSError as e:  # the machine: a full disk, a folder gone; the study is left consistent
        where = f" ({e.filename})" if e.filename else ""
        print(f"search: error: {e.strerror or e}{where}; nothing written is lost: run the same command again "
              f"once it is fixed", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("search: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
