"""Shared by the OPE streaming tests and benchmarks: synthetic chunks and memory peaks.

``HIGH_WATER_MB`` is source text for the child processes that measure a run's peak RSS.
"""

import json
import os
import subprocess
import sys
import tracemalloc

from engine import ope

HIGH_WATER_MB = """
def high_water_mb():  # this process's own peak (ru_maxrss would inherit the parent's at fork)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
"""


def as_chunk(sample):
    """An ``evaluate_stream`` chunk of a synthetic sample (with its true expected rewards)."""
    return {
        "rewards": sample.rewards,
        "actions": sample.actions,
        "logged_probs": sample.logged_probs,
        "target_probs": sample.target_probs,
        "estimated_rewards": sample.expected_rewards,
    }


def synthetic_chunks(world, rng, n_chunks, rows):
    """``n_chunks`` chunks of ``rows`` rows drawn from ``world``, produced one at a time."""
    for _ in range(n_chunks):
        yield as_chunk(world.sample(rows, rng))  # hold no reference between chunks


def stream_peak_bytes(chunks, estimators):
    """Peak traced memory (bytes) of ``evaluate_stream`` over ``chunks``."""
    tracemalloc.start()
    try:
        ope.evaluate_stream(chunks, estimators=estimators)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def child_json(code, path, cwd):
    """Run ``code`` in a fresh single-threaded Python with ``path`` as its argument.

    Returns the JSON object its last output line prints (fails naming the child's error).
    """
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
