import optuna
import pytest

from hwnas.evaluators import count_macs, count_params
from hwnas.spaces import NAMED, GenotypeError, Stage, build, get_space, parse


@pytest.mark.parametrize("name,params", [("mobilenet_v2", 3_504_872), ("mobilenet_v3_large", 5_483_032)])
def test_named_networks_have_published_parameter_counts(name, params):
    model = build(NAMED[name], (3, 224, 224), 1000)
    assert count_params(model) == params


def test_mobilenet_v2_macs_match_published_figure():
    macs = count_macs(build(NAMED["mobilenet_v2"], (3, 224, 224), 1000), (3, 224, 224))
    assert abs(macs / 300.774e6 - 1) < 1e-3


@pytest.mark.parametrize("name", list(NAMED))
def test_named_genotypes_round_trip(name):
    g = NAMED[name]
    assert parse(str(g)) == g


def test_sampled_genotypes_round_trip_and_build():
    space = get_space("mobile", exits=True)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    seen = set()
    for _ in range(40):
        g = space.sample(study.ask(), (1, 8, 8))
        text = str(g)
        assert parse(text) == g and str(parse(text)) == text
        seen.add(text)
    assert len(seen) > 30  # really sampled, not one genotype


def test_text_reads_like_block_strings():
    g = parse("stem_c16_k3_s1_relu, ir_r2_k5_s2_e6_c24_se0.25_hswish, exit_c32_relu, conv_r1_k3_s1_c32_relu, head_relu")
    assert g.stages[0] == Stage("ir", 24, repeats=2, kernel=5, stride=2, expansion=6.0, se=0.25, act="hswish")
    assert g.exits[0].after == 0 and g.exits[0].channels == 32
    assert str(g) == "stem_c16_k3_s1_relu, ir_r2_k5_s2_e6_c24_se0.25_hswish, exit_c32_relu, conv_r1_k3_s1_c32_relu, head_relu"


@pytest.mark.parametrize("text,fragment", [
    ("stem_c16, foo_r1_c8, head", "unknown section"),
    ("stem_c16, ir_r1_q3_c8, head", "unknown field"),
    ("stem_c16, conv_r1_e6_c8, head", "only ir cells expand"),
    ("stem_c16, ir_r1_k4_c8, head", "kernel must be odd"),
    ("ir_r1_c8, head", "needs a stem"),
    ("stem_c16, ir_r1_c8", "needs a stem, stages and a head"),
    ("stem_c16, ir_r1_c8_r2, head", "given twice"),
    ("stem_c16, ir_r1_c8, exit_c8, head", "before the last stage"),
])
def test_bad_text_names_the_problem(text, fragment):
    with pytest.raises(GenotypeError, match=fragment):
        parse(text)
