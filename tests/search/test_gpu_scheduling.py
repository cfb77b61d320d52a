"""The logic of the GPU paths, on a CPU machine: a real local Ray that declares one GPU (Ray
schedules GPUs as a resource it is told about), so fractional --gpus-per-trial packing and the
per-GPU quiet gate run for real; only CUDA itself is absent (tests/test_cuda.py has that part)."""
import functools
import logging
import os
import sys
import time

import pytest
import ray
import ray.cloudpickle

from hwnas.evaluators import Recipe, TrialResult, TrialSpec
from hwnas.search.errors import UsageError
from hwnas.search.executors.quiet_gate import Gate, place
from hwnas.search.executors.ray import RayExecutor

pytestmark = pytest.mark.slow  # starts Ray

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this file


@pytest.fixture(scope="module")
def ray_with_a_gpu():
    ray.init(address="local", num_cpus=8, num_gpus=1, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR, object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


def where_am_i(folder, spec):
    """Says where the worker put the trial, once every trial of the batch is running at once."""
    from hwnas.evaluators import quiet

    open(os.path.join(folder, str(spec.number)), "w").close()
    deadline = time.time() + 60
    while len(os.listdir(folder)) < 4 and time.time() < deadline:
        time.sleep(0.05)
    return TrialResult({"device": spec.device, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
                        "place": quiet._current.node, "together": len(os.listdir(folder))})


def test_a_quarter_gpu_each_packs_four_trials_on_one_gpu(ray_with_a_gpu, tmp_path):
    executor = RayExecutor(gpus_per_trial=0.25, evaluate=functools.partial(where_am_i, str(tmp_path)))
    try:
        assert (executor.capacity, executor.cpus, executor.gpus) == (4, 2, 0.25)
        for n in range(4):
            executor.submit(TrialSpec(n, "unused", "digits", Recipe(epochs=1)))
        out = []
        while len(out) < 4:
            out += executor.wait()
    finally:
        executor.close()
    seen = [o.result.metrics for o in out]
    assert all(s["together"] == 4 for s in seen), seen  # the four ran at the same time
    assert all(s["device"] == "cuda" and s["visible"] == "0" for s in seen), seen
    # one place at the gate: they take turns timing with each other, on that GPU
    assert len({s["place"] for s in seen}) == 1 and seen[0]["place"].endswith("/gpu0")


def test_more_shares_than_the_gpus_hold_are_refused(ray_with_a_gpu):
    with pytest.raises(UsageError, match="--workers 5 x --gpus-per-trial 0.25 needs 1.25 GPUs; the Ray cluster has 1"):
        RayExecutor(workers=5, gpus_per_trial=0.25)


def test_a_timing_on_one_gpu_waits_for_that_gpu_s_trainers_only(ray_with_a_gpu):
    gate = Gate.remote()
    gpu0, gpu1, cpus = place("n", ["0"]), place("n", ["1"]), place("n", [])
    assert (gpu0, gpu1, cpus) == ("n/gpu0", "n/gpu1", "n")
    ray.get(gate.begin_training.remote(gpu0, 1))  # trial 1 trains on GPU 0
    ray.get(gate.begin_training.remote(cpus, 2))  # trial 2 trains on the CPUs
    # a timing on GPU 1 has nobody to wait for
    ray.get(gate.begin_timing.remote(gpu1, 3), timeout=10)
    ray.get(gate.end_timing.remote(gpu1, 3))
    # a timing on GPU 0 waits until trial 1 pauses; trial 2, on the CPUs, is not asked to
    timing = gate.begin_timing.remote(gpu0, 4)
    assert not ray.wait([timing], timeout=1.0)[0]
    paused = gate.pause.remote(gpu0, 1)
    ray.get(timing, timeout=10)
    assert not ray.wait([paused], timeout=0.2)[0]  # trial 1 stays parked while 4 times
    queued = gate.begin_timing.remote(gpu0, 5)  # a second timing there queues for the slot
    assert not ray.wait([queued], timeout=0.5)[0]
    ray.get(gate.end_timing.remote(gpu0, 4))
    ray.get(queued, timeout=10)
    assert not ray.wait([paused], timeout=0.2)[0]  # and trial 1 stays parked for it too
    ray.get(gate.end_timing.remote(gpu0, 5))
    ray.get(paused, timeout=10)
    # what timing cost each place: GPU 0's two timings halted trial 1, much of it waiting for it to
    # park, and the second queued behind the first (the gate's clock starts when a call reaches it,
    # a little after this process's waits began: 0.9 and 0.4 for the 1.0 and 0.5 s waited here)
    stats = ray.get(gate.stats.remote())
    assert stats[gpu0].timings == 2 and stats[gpu1].timings == 1 and stats[cpus].timings == 0
    assert stats[gpu0].held >= stats[gpu0].parking >= 0.9 > stats[gpu1].held >= stats[gpu1].parking
    assert stats[gpu0].queued >= 0.4 > 0.1 > stats[gpu1].queued
    ray.kill(gate)
