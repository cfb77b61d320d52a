import os

import torch

from hwnas.evaluators import measure_latency
from hwnas.evaluators.latency import device_problem, first_steps, timing
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
