"""A trial's whole evaluation is heavy work to a trial timing beside it: it runs in one training
section of the quiet protocol (evaluators.quiet), with the trial's own timings nested in it.
The gate that coordinates Ray workers is tested in tests/search/test_ray.py."""
import contextlib

import torch

from hwnas.evaluators import Recipe, TrialSpec, evaluate, quiet


class Recording:
    """A Quiet that records where each phase was entered (nothing else runs here to coordinate)."""

    def __init__(self) -> None:
        self.depth, self.sections, self.timings = 0, 0, []

    @contextlib.contextmanager
    def training(self):
        assert self.depth == 0, "training sections nested"
        self.depth, self.sections = 1, self.sections + 1
        try:
            yield
        finally:
            self.depth = 0

    @contextlib.contextmanager
    def measuring(self):
        self.timings.append(self.depth)
        yield

    def checkpoint(self) -> None:
        pass


def test_all_of_a_trial_s_work_is_one_training_section_with_its_timings_inside():
    recording, outside = Recording(), []

    def note(*_):  # any module built or run outside the section would disturb a timing beside it
        if recording.depth == 0:
            outside.append(1)

    hooks = [torch.nn.modules.module.register_module_forward_pre_hook(note),
             torch.nn.modules.module.register_module_module_registration_hook(note)]
    quiet.install(recording)
    try:
        m = evaluate(TrialSpec(0, "stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, exit_c32_relu, conv_r1_k3_s2_c16_relu, "
                                  "head_relu", "digits", Recipe(epochs=1))).metrics
    finally:
        quiet.install(quiet.Alone())
        for h in hooks:
            h.remove()
    assert m.exit_rates is not None
    assert recording.sections == 1
    assert recording.timings == [1, 1]  # the model's latency and the early-exit run, both inside
    assert not outside, f"{len(outside)} module builds or forwards ran outside the training section"
