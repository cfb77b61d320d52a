"""Search spaces written as files: the built-ins are files, a printed built-in samples what the
built-in samples, bad files are one line each, and the ImageNet-size space spans MobileNet scale."""
import re
from pathlib import Path

import optuna
import pytest

from hwnas.evaluators import count_macs
from hwnas.spaces import NAMED, SpaceFileError, build, builtin_file, get_space
from hwnas.spaces.spacefile import as_data, differences, dump, load, loads

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "activations: [relu]\nstem: {widths: [8]}\nstages: [{widths: [8]}]\n"


def sampled(space, seed, shape, n):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [str(space.sample(study.ask(), shape)) for _ in range(n)]


@pytest.mark.parametrize("name", ["mobile", "mobile224"])
def test_a_built_in_printed_as_a_file_is_the_same_space(tmp_path, name):
    space = get_space(name)
    (tmp_path / "m.yaml").write_text(space.text)
    again = get_space(str(tmp_path / "m.yaml"))
    assert again.spec == space.spec and again.text == space.text == dump(load(builtin_file(name)))
    assert list(again.choices().items()) == list(space.choices().items())
    shape = (3, 224, 224) if name == "mobile224" else (1, 8, 8)
    assert sampled(again, 7, shape, 20) == sampled(space, 7, shape, 20)


def test_the_mobile_file_keeps_the_mobile_space_s_names_and_choices():
    """Studies made before the space was a file keep opening and continuing: the same parameter
    names, in the same order, with the same options."""
    c = get_space("mobile").choices()
    assert list(c)[:8] == ["stem_width", "act", "s0_depth", "s0_width", "s0_kind", "s0_kernel", "s0_expansion", "s0_se"]
    assert c["s3_width"] == (32, 48, 64) and c["head_width"] == (0, 128, 256) and c["act"] == ("relu", "hswish")
    assert len(c) == 2 + 4 * 6 + 1
    assert set(get_space("mobile", exits=True).choices()) - set(c) == {"exit1_width", "exit2_width"}


def test_the_imagenet_size_space_spans_mobilenet_scale():
    space, shape = get_space("mobile224"), (3, 224, 224)
    macs = sorted(count_macs(build(g, shape, 1000), shape) / 1e6
                  for g in map(lambda s: space.decode(s, shape), _corners(space)))
    assert macs[0] < 30 and macs[-1] > 600, macs  # its choices run from the smallest to the largest
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    drawn = [count_macs(build(space.sample(study.ask(), shape), shape, 1000), shape) / 1e6 for _ in range(40)]
    assert min(drawn) < 40 and max(drawn) > 250, (min(drawn), max(drawn))  # and random draws spread across it
    # MobileNetV2 is a member: its choices decode to it exactly
    v2 = NAMED["mobilenet_v2"]
    p = {"width_mult": 1.0, "stem_width": v2.stem.channels, "head_width": v2.head.channels}
    for i, st in enumerate(v2.stages):
        p |= {f"s{i}_depth": st.repeats, f"s{i}_width": st.channels, f"s{i}_kind": st.kind, f"s{i}_kernel": st.kernel,
              f"s{i}_expansion": int(st.expansion), f"s{i}_se": st.se, f"s{i}_act": st.act}
    assert all(p[k] in options for k, options in space.choices().items())
    assert space.decode(p, shape) == v2


def _corners(space):
    c = space.choices()
    numeric = {k: v for k, v in c.items() if all(isinstance(o, (int, float)) for o in v)}
    return [{k: (f(v) if k in numeric else v[0]) for k, v in c.items()} for f in (min, max)]


@pytest.mark.parametrize("text,fragment", [
    ("name: x\nstges: []\n", "top level: unknown key 'stges'; keys: name, description, activations"),
    ("activations: [relu]\nstem: {widths: []}\nstages: [{widths: [8]}]\n", "stem.widths: an empty list; give at least one width"),
    ("activations: [relu]\nstem: {widths: [8]}\nstages: [{widths: [0]}]\n", "stages[0].widths: 0 is not a width"),
    ("activations: [relu]\nstem: {widths: [8]}\nstages: [{widths: [8], kernels: [3, 4]}]\n",
     "stages[0].kernels: 4 is even; kernels are odd integers from 1 to 31"),
    ("a: [1\n  b: }\n", "is not YAML: line 2, column 4"),
    ("- just\n- a list\n", "must hold a mapping of keys"),
    ("stem: {widths: [8]}\nstages: [{widths: [8]}]\n", "stages[0]: has no activations"),
    ("activations: [relu]\nstem: {widths: [8], stride: 2}\nstages: [{widths: [8]}]\n", "stages[0].stride: is auto while"),
    ("activations: [swish]\nstem: {widths: [8]}\nstages: [{widths: [8]}]\n", "activations: 'swish' is not an activation"),
    ("activations: [relu]\nstem: {widths: [8]}\nstages: [{widths: [8, 8]}]\n", "stages[0].widths: 8 appears twice"),
    ("activations: [relu]\nstem: {widths: [8]}\nstages: [{widths: [8], kinds: [mbconv]}]\n", "'mbconv' is not a cell kind"),
    ("activations: [relu]\nstem: {widths: [8]}\nstages: [{widths: [8]}]\nexits: {widths: [8], after: [0]}\n",
     "exits.after: a space of one stage has no place for an exit"),
    ("activations: [relu]\nstem: {widths: [true]}\nstages: [{widths: [8]}]\n", "stem.widths: True is not a width"),
])
def test_bad_space_files_are_one_line_naming_the_key(text, fragment):
    with pytest.raises(SpaceFileError) as e:
        loads(text, "space file s.yaml")
    assert fragment in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_fixed_strides_are_checked_against_the_input():
    space = get_space("mobile224")
    assert space.input_problem((3, 224, 224)) is None and space.input_problem((3, 32, 32)) is None
    problem = space.input_problem((1, 8, 8))
    assert re.search(r"5 stride-2 steps \(32x downsampling\), more than a 8x8 input allows \(at most 3\); "
                     r"use --resolution 32", problem), problem
    assert get_space("mobile").input_problem((1, 8, 8)) is None  # auto strides fit any input


def test_what_changed_between_two_spaces_is_named():
    a = loads(get_space("mobile").text)
    b = loads(get_space("mobile").text.replace("widths: [16, 24, 32]", "widths: [16, 24, 40]"))
    assert differences(as_data(a), as_data(b)) == ["stages[1].widths [16, 24, 32] -> [16, 24, 40]"]
    assert differences(as_data(a), as_data(a)) == []


def test_a_minimal_file_fills_in_defaults():
    spec = loads(MINIMAL, "space file s.yaml", "s")
    assert spec.name == "s" and spec.stages[0].kinds == ("ir",) and spec.head.widths == (0,)
    assert loads(dump(spec)) == spec
