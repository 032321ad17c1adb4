"""200k decisions (and rewards) through the log: memory stays bounded."""

import gc
import os
import resource
import time

from engine.actions import ACTION_NAMES
from engine.decision_log import DecisionLog, DecisionRecord

ACTIONS = ACTION_NAMES
PROBS = (0.4, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1)
FEATURES = [f"f{j}" for j in range(20)]
N = 200_000
WARMUP = 20_000


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def test_rss_growth_is_small_for_200k_decisions(tmp_path):
    with DecisionLog(tmp_path / "mem.db", attribution_window=3600.0) as log:
        baseline = None
        for i in range(N):
            if i == WARMUP:
                log.flush()
                gc.collect()
                baseline = rss_bytes()
            log.append_decision(
                DecisionRecord(
                    timestamp=1000.0 + i,
                    user_hash=f"u{i % 5000}",
                    model_version="m1",
                    actions=ACTIONS,
                    probabilities=PROBS,
                    eligible=ACTIONS,
                    action=ACTIONS[i % 7],
                    features=dict.fromkeys(FEATURES, float(i)),
                    payload={"i": i},
                    decision_id=f"d{i}",
                )
            )
            if i % 4 == 0:
                log.append_outcome(f"d{i}", 1.0, 1001.0 + i)
            if (
                i % 1000 == 0
            ):  # a real checkout is far slower than this loop: do not outrun the writer
                while log.health()["queued"] > 20_000:
                    time.sleep(0.005)
        log.flush()
        gc.collect()
        growth = rss_bytes() - baseline
        health = log.health()
    print(f"\nRSS growth over {N - WARMUP} decisions: {growth / 2**20:.1f} MiB")
    assert health["written_decisions"] == N and health["written_outcomes"] == N // 4
    assert health["pending_decisions"] == health["pending_outcomes"] == 0
    assert health["dropped_events"] == health["memory_fallback_events"] == 0
    # generous: ~180k decisions kept in memory would need several hundred MiB
    assert growth < 64 * 2**20
    assert os.path.getsize(tmp_path / "mem.db") > 0
