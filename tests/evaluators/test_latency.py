import os

import torch

from hwnas.evaluators import measure_latency
from hwnas.evaluators.latency import device_problem, first_steps, settle, time_runs, timing
from hwnas.spaces import build, parse

SMALL = parse("stem_c8_k3_s1_relu, ds_r1_k3_s2_c16_relu, head_relu")


def test_threads_apply_to_the_measurement_only():
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    lat = measure_latency(build(SMALL, (1, 8, 8), 10), (1, 8, 8), min_runs=5, min_seconds=0.01, threads=target)
    assert lat.threads == target and torch.get_num_threads() == before


def test_device_problem_names_the_device():
    assert device_problem("cpu") is None
    assert "unknown --device 'gpu'" in device_problem("gpu")
    assert device_problem("cuda:1") is None  # a name only: a study made on a GPU machine reads anywhere
    if torch.cuda.is_available():
        assert device_problem("cuda", check_available=True) is None
        assert "cuda:99" in device_problem("cuda:99", check_available=True)
    else:
        assert "--device cuda asked, but CUDA is not available" in device_problem("cuda", check_available=True)


def test_one_thread_cpu_timings_run_at_real_time_priority_where_allowed():
    model = build(SMALL, (1, 8, 8), 10)
    with timing(1) as realtime:
        inside = os.sched_getscheduler(0)
    assert (inside == os.SCHED_FIFO) == realtime
    cores = os.sched_getaffinity(0)
    if os.geteuid() == 0 and len(cores) > 1:  # root may always (CI and this machine run as root)
        assert realtime
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # restored
    assert measure_latency(model, (1, 8, 8), min_runs=5, min_seconds=0.01, threads=1).realtime == realtime
    with timing(2) as realtime:  # helper threads would not share the priority
        assert not realtime and os.sched_getscheduler(0) == os.SCHED_OTHER
    with timing(1, realtime=False) as realtime:  # untimed work in the timing's threads: no priority
        assert not realtime and os.sched_getscheduler(0) == os.SCHED_OTHER and torch.get_num_threads() == 1
    os.sched_setaffinity(0, {min(cores)})  # one core: the machine would stall while it times
    try:
        with timing(1) as realtime:
            assert not realtime and os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        os.sched_setaffinity(0, cores)


def test_first_steps_leave_the_random_generators_as_they_were():
    """What ``start_cuda`` runs in a GPU worker before its first trial, here on the CPU: a
    trial's seeded draws must not depend on whether it ran."""
    torch.manual_seed(5)
    first_steps(torch.device("cpu"))
    after = torch.rand(4)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(4))


class Clock:
    """A stand-in clock that each window moves on by ``per_window`` seconds."""

    def __init__(self, per_window: float) -> None:
        self.now, self.per_window = 0.0, per_window

    def __call__(self) -> float:
        return self.now

    def window(self, medians: list[float]):
        def one() -> float:
            self.now += self.per_window
            return medians.pop(0)
        return one


def test_settle_warms_until_a_window_is_no_faster_than_the_one_before():
    """A GPU's clocks ramping up from idle, as window medians: warming goes on while each window
    is more than 2 % faster than the one before, and stops at the first that is not."""
    clock = Clock(0.01)
    ramp = [9.0, 7.0, 5.5, 4.6, 4.55, 4.5, 4.5]
    assert settle(clock.window(ramp), 1.0, clock) == 5 and ramp == [4.5, 4.5]
    clock, slower = Clock(0.01), [4.5, 4.9, 4.4]  # a slow window (noise) is no ramp either
    assert settle(clock.window(slower), 1.0, clock) == 2


def test_settle_gives_up_at_its_time_limit():
    clock = Clock(0.3)
    falling = [10.0 * 0.9 ** i for i in range(20)]  # 10 % faster every window: never settles
    assert settle(clock.window(falling), 1.0, clock) == 4  # windows at 0.3, 0.6, 0.9, then 1.2 s: past the limit


def test_cpu_timings_are_not_settled(monkeypatch):
    """Only a GPU's full timings settle: the CPU's figures are timed as before."""
    called = []
    monkeypatch.setattr("hwnas.evaluators.latency.settle", lambda window, *a, **k: called.append(window))
    assert len(time_runs(lambda: None, cuda=False, warmup=2, warmup_seconds=0.01, min_runs=3, min_seconds=0.0)) >= 3
    assert called == []
