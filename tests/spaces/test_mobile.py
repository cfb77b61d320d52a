import optuna
import pytest
import torch

from hwnas.spaces import build, get_space
from hwnas.spaces.cells import stage_strides


@pytest.mark.parametrize("shape,final", [((1, 8, 8), 2), ((1, 28, 28), 4), ((3, 32, 32), 4), ((3, 224, 224), 7)])
def test_strides_keep_a_feature_map(shape, final):
    stem, strides = stage_strides(shape, 4)
    side = shape[1]
    for s in (stem, *strides):
        side = (side + s - 1) // s
    assert side == final


def test_digit_sized_networks_are_not_downsampled_to_nothing():
    space = get_space("mobile")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(10):
        model = build(space.sample(study.ask(), (1, 8, 8)), (1, 8, 8), 10).eval()
        x = model.stem(torch.zeros(1, 1, 8, 8))
        for stage in model.stages:
            x = stage(x)
        assert x.shape[-1] >= 2
        assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)


def test_exits_are_sampled_only_when_asked():
    plain, with_exits = get_space("mobile"), get_space("mobile", exits=True)
    assert not any(k.startswith("exit") for k in plain.choices())
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    genotypes = [with_exits.sample(study.ask(), (1, 8, 8)) for _ in range(20)]
    assert any(g.exits for g in genotypes) and not all(g.exits for g in genotypes)
    model = build(next(g for g in genotypes if g.exits), (1, 8, 8), 10)
    outs = model.forward_exits(torch.zeros(2, 1, 8, 8))
    assert len(outs) == len(model.exits) + 1 and all(o.shape == (2, 10) for o in outs)
