"""The GPU paths, on a real NVIDIA GPU: training with the data set on the device, AdamW fused, bf16 autocast,
a trial paused at a rung and resumed, CUDA-event latency, CUDA started ahead of a worker's first
trial, and a Ray search packing several trials on one GPU. Where there is no GPU these are reported as not run (tests/conftest.py);
benchmarks/gpu_check.py runs them on one. No MLflow here: a GPU machine may have only the
search's own dependencies (tests/test_package.py checks that they are enough)."""
import statistics
from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hwnas.evaluators import Recipe, TrialSpec, evaluate
from hwnas.evaluators.data import crop_flip
from hwnas.evaluators.latency import measure_latency
from hwnas.evaluators.training import train
from hwnas.evaluators.trial import device_data, trial_data
from hwnas.spaces import build, parse

pytestmark = pytest.mark.cuda

NET = "stem_c16_k3_s1_relu, ir_r2_k3_s2_e4_c24_relu, ir_r2_k5_s2_e4_c32_relu, conv_r1_k3_s1_c64_relu, head_relu"


def spec(**recipe) -> TrialSpec:
    # 5 epochs: 0.97 on the CPU, and gpu_check (these tests included) has 5 minutes in all
    return TrialSpec(0, NET, "digits", Recipe(**{"epochs": 5, **recipe}), device="cuda")


class HostToDevice(TorchDispatchMode):
    """Records every tensor copied from the host to a GPU while active: (elements, non-blocking)."""

    def __init__(self) -> None:
        super().__init__()
        self.copies: list[tuple[int, bool]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        sources = [a for a in args if isinstance(a, torch.Tensor) and a.device.type == "cpu"]
        if func in (torch.ops.aten._to_copy.default, torch.ops.aten.copy_.default) and sources \
                and isinstance(out, torch.Tensor) and out.is_cuda:
            blocking = not (kwargs.get("non_blocking") or (len(args) > 2 and args[2]))
            self.copies.append((sources[-1].numel(), not blocking))
        return out


def test_training_copies_the_data_set_to_the_gpu_once():
    s = spec(epochs=3)
    train_split, val_split = device_data(s)
    assert all(t.is_cuda for t in (train_split.levels, train_split.labels, val_split.levels, val_split.labels))
    assert device_data(s)[0].levels.data_ptr() == train_split.levels.data_ptr()  # kept, not copied again
    data = trial_data(s.dataset, s.data_dir, s.recipe)
    model = build(parse(NET), data.input_shape, data.num_classes).to("cuda")
    with HostToDevice() as seen:
        train(model, train_split, s.recipe, "cuda", augment=crop_flip)
    steps = s.recipe.epochs * -(-len(train_split) // s.recipe.batch_size)
    image = train_split.levels[0].numel()
    # no image crosses from the host: the shuffle order (once an epoch), each step's augmentation
    # draws (3 numbers an image, without waiting for the GPU) and scalars do
    assert seen.copies and max(n for n, _ in seen.copies) <= len(train_split) < s.recipe.batch_size * image
    waited = [n for n, non_blocking in seen.copies if n > 1 and not non_blocking]
    assert len(waited) <= s.recipe.epochs, seen.copies  # the shuffle order; not a copy a step
    assert sum(non_blocking for _, non_blocking in seen.copies) >= steps, seen.copies  # the draws


def test_a_trial_trains_on_the_gpu_and_records_its_memory_and_precision():
    m = evaluate(spec()).metrics
    assert m.accuracy is not None and m.accuracy > 0.8, m
    assert m.train_precision == "fp32" and (m.gpu_memory_mb or 0) > 0 and m.latency_runtime == "torch"


def test_adamw_s_update_is_fused_on_the_gpu():
    from hwnas.evaluators.training import Trainer

    data = trial_data("digits", "", Recipe())
    trainer = Trainer(build(parse(NET), data.input_shape, data.num_classes), Recipe(epochs=1), len(data.train), "cuda")
    assert trainer.opt.defaults["fused"] is True
    trainer.train_epoch(device_data(spec())[0])
    assert all(s["step"].is_cuda for s in trainer.opt.state.values())  # the fused kernel's state lives there


def test_bf16_autocast_reaches_fp32_accuracy():
    fp32, bf16 = evaluate(spec()).metrics, evaluate(spec(precision="bf16")).metrics
    assert bf16.train_precision == "bf16" and fp32.accuracy is not None and bf16.accuracy is not None
    assert abs(bf16.accuracy - fp32.accuracy) < 0.05, (fp32.accuracy, bf16.accuracy)


def test_cuda_latency_is_steady_over_repeats():
    data = trial_data("digits", "", Recipe())
    model = build(parse(NET), data.input_shape, data.num_classes)
    runs = [measure_latency(model, data.input_shape, "cuda").median_ms for _ in range(5)]
    assert max(runs) / min(runs) < 1.10, runs
    assert statistics.median(runs) < 5.0, runs


def test_a_trial_paused_at_a_rung_goes_on_on_the_gpu():
    """Early stopping's pause and resume (its training state as bytes, loaded in a fresh Trainer)
    with the model and optimiser on the GPU; it ends where an unpaused trial does (up to the GPU's
    non-deterministic kernels)."""
    whole = evaluate(spec(epochs=2)).metrics
    first = evaluate(spec(epochs=2, rungs=(1,)))
    assert first.paused is not None and len(first.metrics.epoch_accuracy or ()) == 1
    ended = evaluate(replace(spec(epochs=2, rungs=(1,)), resume=first.paused)).metrics
    assert len(ended.epoch_accuracy or ()) == 2 and ended.accuracy is not None and whole.accuracy is not None
    assert abs(ended.accuracy - whole.accuracy) < 0.03, (ended.epoch_accuracy, whole.epoch_accuracy)


def test_start_cuda_starts_it_and_leaves_the_generators_as_they_were():
    """What a Ray worker on a GPU does at its start (so that its first trial's quiet phase does
    not): in a fresh process, CUDA is started after it, and no random stream moved."""
    import subprocess
    import sys

    code = ("import torch\n"
            "from hwnas.evaluators.latency import start_cuda\n"
            "torch.manual_seed(7)\n"
            "assert not torch.cuda.is_initialized()\n"
            "start_cuda('cuda')\n"
            "assert torch.cuda.is_initialized() and torch.backends.cudnn.is_available()\n"
            "after = torch.rand(3).tolist(), torch.rand(3, device='cuda').tolist()\n"
            "torch.manual_seed(7)\n"
            "assert after == (torch.rand(3).tolist(), torch.rand(3, device='cuda').tolist()), after\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_a_ray_search_packs_four_trials_on_one_gpu(tmp_path):
    import optuna

    from hwnas.search.config import RunConfig
    from hwnas.search.loop import run_search
    from hwnas.search.study import load_study

    config = RunConfig(space="mobile", dataset="digits", trials=4, epochs=2, device="cuda", gpus_per_trial=0.25,
                       dir=str(tmp_path), study="packed", sampler="random", early_stop="none")
    run_search(config, track=False, progress=False)
    trials = load_study(str(tmp_path), "packed").trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4, [(t.state, t.user_attrs.get("fail_reason")) for t in trials]
    assert all(t.user_attrs["gpu_memory_mb"] > 0 and t.user_attrs["train_precision"] == "fp32" for t in done)
