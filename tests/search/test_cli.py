import json

import optuna
import pytest

from hwnas.search.study import journal_path, load_study


@pytest.mark.slow
def test_run_front_and_continue(cli, search_here, tmp_path):
    r = cli("run", "--trials", "4", "--epochs", "1", "--study", "s", "--dir", str(tmp_path), "--sampler", "random")
    assert r.returncode == 0, r.stderr
    assert "[4/4]" in r.stderr and "genotype" in r.stdout
    study = load_study(str(tmp_path), "s")
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    assert all({"genotype", "accuracy", "test_accuracy", "macs", "params", "latency_ms"} <= t.user_attrs.keys()
               for t in complete)

    r = search_here("front", "--study", "s", "--dir", str(tmp_path), "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    best = {t.number: t for t in study.best_trials}
    assert rows and {row["trial"] for row in rows} <= best.keys()
    for row in rows:
        t = best[row["trial"]]
        assert row["accuracy"] == t.values[0] == t.user_attrs["accuracy"]
        assert row["latency_ms"] == t.values[1] and row["macs"] == t.values[2]
        assert row["genotype"] == t.user_attrs["genotype"]

    # The same command with more trials continues the study up to that many COMPLETE trials.
    r = search_here("run", "--trials", "5", "--epochs", "1", "--study", "s", "--dir", str(tmp_path), "--sampler",
                    "random", "--workers", "1")  # in this process: the first run went through Ray
    assert r.returncode == 0, r.stderr
    study = load_study(str(tmp_path), "s")
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 5
    # reseeded on continuation: no replay of the first random asks
    assert study.trials[4].params != study.trials[0].params


@pytest.mark.slow
def test_continuing_with_other_objectives_is_refused(search_here, tmp_path):
    assert search_here("run", "--trials", "1", "--epochs", "1", "--workers", "1", "--study", "s", "--dir", str(tmp_path)).returncode == 0
    before = journal_path(str(tmp_path), "s").read_bytes()
    r = search_here("run", "--trials", "2", "--epochs", "1", "--workers", "1", "--study", "s", "--dir", str(tmp_path),
                    "--objectives", "accuracy,params")
    assert r.returncode == 2 and "objectives" in r.stderr and "Traceback" not in r.stderr
    assert journal_path(str(tmp_path), "s").read_bytes() == before
    # refused before Ray is joined (or started: seconds): nobody listens at this address
    r = search_here("run", "--trials", "2", "--epochs", "1", "--study", "s", "--dir", str(tmp_path),
                    "--objectives", "accuracy,params", "--ray-address", "127.0.0.1:9")
    assert r.returncode == 2 and "was run with objectives=" in r.stderr and "Ray" not in r.stderr, r.stderr
    assert journal_path(str(tmp_path), "s").read_bytes() == before


@pytest.mark.slow  # MobileNets at 224 take seconds each: out of the fast subset
@pytest.mark.parametrize("name,params", [("mobilenet_v2", 3_504_872), ("mobilenet_v3_large", 5_483_032)])
def test_inspect_named(cli, name, params):
    # a small throughput batch: 32 MobileNets at 224 take seconds of eager torch on this machine
    r = cli("inspect", name, "--input", "3x224x224", "--classes", "1000", "--format", "json", "--throughput-batch", "2")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["params"] == params and out["latency_ms"] > 0 and out["throughput"] > 0
    assert out["latency_runtime"] == "torch" and out["peak_memory_mb"] > 4 * params / 2**20  # weights and more
    if name == "mobilenet_v2":
        assert abs(out["macs"] / 300.774e6 - 1) < 1e-3


def test_inspect_genotype_text_and_spaces(cli):
    r = cli("inspect", "stem_c8_k3_s1_relu, ir_r1_k3_s2_e4_c16_relu, head_relu", "--input", "1x8x8", "--classes", "10")
    assert r.returncode == 0 and "macs" in r.stdout
    r = cli("spaces")
    assert r.returncode == 0 and "space mobile" in r.stdout and "mobilenet_v3_large: stem_c16" in r.stdout


@pytest.mark.slow
def test_nb201_search_reads_the_table(search_here, tmp_path):
    r = search_here("run", "--space", "nb201", "--dataset", "cifar100", "--objectives", "accuracy,params", "--trials", "30",
            "--study", "nb", "--dir", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "[30/30]" in r.stderr and "sampler hybrid" in r.stderr and "|+|" in r.stdout
    study = load_study(str(tmp_path), "nb")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 30 and len({t.user_attrs["genotype"] for t in trials}) == 30
    for t in trials:
        assert t.values == [t.user_attrs["accuracy"], t.user_attrs["params"]] and 0 < t.values[0] < 0.75
    assert trials[-1].user_attrs["screened"] == 15625  # cheap lookups: free, but on record


# (unknown space, sampler, objective, a zero count and a missing study: test_robustness.py)
@pytest.mark.parametrize("args,fragment", [
    (["run", "--space", "nb201", "--objectives", "accuracy,macs"], "objective 'macs' is not measured in space nb201"),
    (["run", "--space", "nb201", "--dataset", "digits"], "space nb201: unknown data set 'digits'; available: cifar10, cifar100, imagenet"),
    (["run", "--space", "nb201", "--exits"], "--exits does not apply to space nb201"),
    (["inspect", "stem_c8, nope, head"], "unknown section"),
    (["inspect", "mobilenet_v2", "--input", "3x224"], "bad --input"),
])
def test_bad_input_is_one_line_and_exit_2(search_here, tmp_path, args, fragment):
    r = search_here(*args, *(["--dir", str(tmp_path)] if args[0] in ("run", "front") else []))
    assert r.returncode == 2
    assert fragment in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_version_names_the_installed_package(search_here):
    from importlib.metadata import version

    r = search_here("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"search (hwnas {version('hwnas')})", r


def test_a_mistyped_number_or_name_is_refused_before_torch_is_imported(tmp_path):
    """Refusals of the options checked first (counts, the space, the sampler, objectives, a
    genotype's text, a missing study) come at once: torch, a second or more to import, is not
    loaded for them, nor to print a space's file."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from hwnas.search.cli import main\n"
            "d = sys.argv[1]\n"
            "for argv in (['run', '--trials', '0'], ['run', '--space', 'nope'], ['run', '--sampler', 'x'],\n"
            "             ['run', '--objectives', 'accuracy,nope'], ['inspect', 'stem_c8, nope, head'],\n"
            "             ['front', '--study', 'nope', '--dir', d], ['export', '--study', 'nope', '--dir', d,\n"
            "             '--out', d + '/o'], ['spaces', '--show', 'nope']):\n"
            "    assert main(argv) == 2, argv\n"
            "    assert 'torch' not in sys.modules, argv\n"
            "assert main(['spaces', '--show', 'mobile']) == 0 and 'torch' not in sys.modules\n")
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("search: error:") == 8 and "Traceback" not in r.stderr
    assert "stages:" in r.stdout  # the space's file
