import torch
from torch import nn

from hwnas.evaluators import Recipe, accuracy_of, count_macs, count_params, load_dataset, measure_latency, train
from hwnas.spaces import build, parse

SMALL = parse("stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, conv_r1_k3_s2_c16_relu, head_relu")


def test_digits_splits_are_fixed_disjoint_and_stratified():
    a, b = load_dataset("digits"), load_dataset("digits")
    sizes = [len(a.train), len(a.val), len(a.test)]
    assert sum(sizes) == 1797 and sizes[1] in (359, 360) and sizes[2] in (359, 360)
    assert torch.equal(a.val.images(), b.val.images()) and torch.equal(a.test.labels, b.test.labels)
    rows = lambda x: {tuple(r.flatten().tolist()) for r in x}
    assert not rows(a.val.images()) & rows(a.test.images())
    assert set(a.val.labels.tolist()) == set(range(10))


def test_macs_and_params_of_a_hand_counted_net():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 10))
    assert count_macs(model, (1, 8, 8)) == 8 * 8 * 4 * 9 + 256 * 10
    assert count_params(model) == 36 + 2560 + 10


def test_macs_equal_torch_s_flop_counter_on_every_kind_of_network():
    """Our hook count against torch's FlopCounterMode (2 FLOPs a MAC), on the named networks and
    random networks of the mobile space with early exits (every block kind, SE, exits' heads)."""
    import random

    from torch.utils.flop_counter import FlopCounterMode

    from hwnas.spaces import NAMED, get_space

    space, rng = get_space("mobile", exits=True), random.Random(0)
    nets = [(NAMED["mobilenet_v2"], (3, 64, 64)), (NAMED["mobilenet_v3_large"], (3, 64, 64))]
    nets += [(space.decode({n: rng.choice(o) for n, o in space.choices().items()}, (1, 16, 16)), (1, 16, 16))
             for _ in range(12)]
    for genotype, shape in nets:
        model = build(genotype, shape, 10).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model.forward_exits(torch.zeros(1, *shape))
        assert count_macs(model, shape, forward=model.forward_exits) == counter.get_total_flops() // 2, genotype


def test_training_learns_and_is_deterministic():
    data = load_dataset("digits")
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = train(build(SMALL, data.input_shape, 10), data.train, Recipe(epochs=3, seed=0))
        results.append(accuracy_of(model, data.val))
    assert results[0] == results[1]
    assert results[0] > 0.5  # chance is 0.1


def test_the_cpu_keeps_adamw_s_per_parameter_update():
    """A GPU fuses AdamW's update (tests/test_cuda.py); on the CPU the fused one rounds
    differently, and every accuracy would move in its last digits."""
    from hwnas.evaluators.training import Trainer

    assert not Trainer(build(SMALL, (1, 8, 8), 10), Recipe(), 100).opt.defaults["fused"]


def test_latency_is_measured_with_threads_recorded():
    lat = measure_latency(build(SMALL, (1, 8, 8), 10), (1, 8, 8), min_runs=20, min_seconds=0.05)
    assert lat.median_ms > 0 and lat.runs >= 20 and lat.threads == torch.get_num_threads()
