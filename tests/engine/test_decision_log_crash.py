"""kill -9 a writing process: sync loses nothing acknowledged, batch at most the last window
(SQLite file and PostgreSQL store)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.decision_log.log import DEFAULT_FLUSH_INTERVAL, default_flush_interval

ROOT = Path(__file__).resolve().parents[2]
FLUSH_INTERVAL = DEFAULT_FLUSH_INTERVAL  # SQLite's default (PostgreSQL's: its own)
FLUSH_EVENTS = 1000
SLACK = 0.5  # one commit of a full batch plus scheduling on a busy 2-core machine

CHILD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from engine.decision_log import DecisionLog, DecisionRecord
log = DecisionLog(sys.argv[2], durability=sys.argv[3], flush_interval=float(sys.argv[4]),
                  flush_events=int(sys.argv[5]), spill_dir=sys.argv[7] or None)
period = 1.0 / float(sys.argv[6]) if float(sys.argv[6]) > 0 else 0.0
start = time.monotonic()
actions = ("none", "coupon_5", "recall_message")
out = sys.stdout
for i in range(10**9):
    did = log.append_decision(DecisionRecord(
        timestamp=1000.0 + i, user_hash="u%d" % (i % 97), model_version="m1", actions=actions,
        probabilities=(0.5, 0.25, 0.25), eligible=actions, action=actions[i % 3],
        features={"i": float(i)}, payload={"n": i}, decision_id="d%d" % i))
    out.write("%s %.6f\n" % (did, time.monotonic()))
    out.flush()
    if period:
        time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
"""


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """(log target, spill directory): a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return str(tmp_path / "log.db"), ""
    return request.getfixturevalue("pg_url"), str(tmp_path / "spill")


def run_and_kill(store, durability: str, n_acks: int, rate: float = 0.0) -> list[tuple[str, float]]:
    """Start a writer (``rate`` decisions/s, 0 = flat out), SIGKILL it after ``n_acks``
    acknowledgements; return every (decision_id, monotonic time) it acknowledged."""
    target, spill_dir = store
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD,
            str(ROOT),
            target,
            durability,
            str(default_flush_interval(target)),
            str(FLUSH_EVENTS),
            str(rate),
            spill_dir,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    acks = []
    try:
        for line in proc.stdout:
            did, stamp = line.split()
            acks.append((did, float(stamp)))
            if len(acks) >= n_acks:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for line in proc.stdout:  # acknowledged before the kill, still in the pipe
            parts = line.split()
            if len(parts) == 2:
                acks.append((parts[0], float(parts[1])))
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return acks


def stored_ids(store) -> set[str]:
    from engine.decision_log import DecisionLog

    target, spill_dir = store
    with DecisionLog(
        target, spill_dir=spill_dir or None
    ):  # reopening runs WAL recovery / replays spill files
        pass
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            rows = conn.execute(
                "SELECT decision_id, count(*) FROM decisions GROUP BY decision_id"
            ).fetchall()
        assert all(n == 1 for _, n in rows)
        return {did for did, _ in rows}
    conn = sqlite3.connect(target)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {row[0] for row in conn.execute("SELECT decision_id FROM decisions")}
    finally:
        conn.close()


def test_sync_mode_loses_no_acknowledged_decision(store):
    acks = run_and_kill(store, "sync", n_acks=1500)
    stored = stored_ids(store)
    acked = {did for did, _ in acks}
    assert len(acked) >= 1500
    assert acked <= stored  # at most one unacknowledged extra (committed, killed before printing)
    assert len(stored - acked) <= 1


@pytest.mark.parametrize(
    ("n_acks", "rate"), [(1500, 2000.0), (7000, 0.0)], ids=["2000-per-s", "flat-out"]
)
def test_batch_mode_loses_at_most_the_last_flush_window(store, n_acks, rate):
    acks = run_and_kill(store, "batch", n_acks=n_acks, rate=rate)
    stored = stored_ids(store)
    assert len(acks) >= n_acks
    # only a suffix is lost: everything acknowledged before the first lost id is stored
    first_lost = next((i for i, (did, _) in enumerate(acks) if did not in stored), len(acks))
    lost = acks[first_lost:]
    assert all(did not in stored for did, _ in lost)
    # and the suffix is the last window: acknowledged within a flush interval (+ one commit)
    # of the end, and no more events than arrived in that time or one flush_events batch
    last_ack = acks[-1][1]
    span = last_ack - lost[0][1] if lost else 0.0
    interval = default_flush_interval(store[0])
    in_window = sum(1 for _, t in acks if t >= last_ack - interval - SLACK)
    assert span <= interval + SLACK, f"lost {len(lost)} decisions spanning {span * 1000:.0f} ms"
    assert len(lost) <= max(in_window, FLUSH_EVENTS)
    print(
        f"\nbatch kill -9 at {rate or 'max'}/s: {len(acks)} acknowledged, {len(lost)} lost "
        f"(acknowledged over the last {span * 1000:.1f} ms)"
    )


# --------------------------------------------------------------------------- full load
# Children make real engine decisions as fast as they can (batch-mode log on one shared
# database) and record each acknowledgement (decide() returned) as "<id> <monotonic s>" with
# one unbuffered os.write to their own append-only file: the kernel keeps those bytes when
# the process is killed, and CLOCK_MONOTONIC is shared by all processes.
ENGINE_CHILD = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from engine import DecisionEngine
from time import monotonic
with open(sys.argv[5]) as f:
    contexts = json.load(f)
from engine.decision_log import DecisionLog
log = DecisionLog(sys.argv[2], durability="batch", flush_interval=float(sys.argv[6]),
                  flush_events=int(sys.argv[7]), salt="cartwise-development-salt")
engine = DecisionEngine(seed=int(sys.argv[4]), log=log)
fd = os.open(sys.argv[3], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
decide, write, n = engine.decide, os.write, len(contexts)
decide(contexts[0])
sys.stdout.write("ready\n")
sys.stdout.flush()
i = 0
while True:
    d = decide(contexts[i % n])
    write(fd, b"%s %.6f %d\n" % (d.decision_id.encode(), monotonic(), d.fallback))
    i += 1
"""
DECIDING_S = 1.5
# The documented bound is flush_interval (20 ms by default) once the writer thread runs. The
# margin is for a host with far more runnable threads than cores (this suite runs on 2 cores shared
# with other jobs, load ~17): there each of the few waits of a commit cycle (thread wake-up,
# the GIL held by a descheduled producer) can last a few scheduler slices of ~3 ms per
# runnable thread. Measured worst over 20 kills at that load: 106 ms (README, decision log).
# In runs of the suite (the other xdist worker busy beside the two children) the test failed
# twice on December 3, 2026, once at 211 ms with the children's loops stalled only 21 ms: the
# writer thread alone was kept from running. The margin was 150 ms, set when flush_interval
# was 50 ms; it is now 250 ms, which keeps the base bound above those runs.
LOAD_MARGIN = 0.25
# On top of that, the bound allows what the same run shows the host took from the children:
# the longest stall of a child's decide loop (gap between two acknowledgements, or from its
# last one to the kill) over the last STALL_LOOKBACK_S. While a process is descheduled, or
# its GIL held by a descheduled thread, its writer cannot commit either, so such a stall
# delays the last commit by as much (215 ms was measured once against a fixed 200 ms bound
# on a host loaded by other jobs). The allowance is capped at MAX_STALL_ALLOWANCE, so the
# bound stays at most 420 ms: a writer that missed its deadline (e.g. one committing only
# every flush_events, about 1 s of decisions here, or only on close) still fails.
STALL_LOOKBACK_S = 0.5
MAX_STALL_ALLOWANCE = 0.15


def kill_under_full_load(
    path: Path,
    tmp: Path,
    n_procs: int,
    contexts: list[dict],
    flush_interval: float = FLUSH_INTERVAL,
    flush_events: int = FLUSH_EVENTS,
) -> tuple[list[tuple[str, float, int]], float]:
    """Run ``n_procs`` engine processes deciding ``contexts`` (in a loop) flat out and logging
    to ``path``, SIGKILL them all after ``DECIDING_S``; return their acknowledgements
    [(decision_id, monotonic time, child number)] and the kill time."""
    procs, ack_files = [], []
    context_file = tmp / "contexts.json"
    context_file.write_text(json.dumps(contexts))
    try:
        for k in range(n_procs):
            ack_files.append(tmp / f"acks{k}.txt")
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        ENGINE_CHILD,
                        str(ROOT),
                        str(path),
                        str(ack_files[-1]),
                        str(k),
                        str(context_file),
                        str(flush_interval),
                        str(flush_events),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for proc in procs:
            assert proc.stdout.readline() == "ready\n"
        time.sleep(DECIDING_S)
        killed_at = time.monotonic()
        for proc in procs:
            os.kill(proc.pid, signal.SIGKILL)
        for proc in procs:
            proc.wait(timeout=30)
            assert proc.returncode == -signal.SIGKILL
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
    acks = []
    for k, file in enumerate(ack_files):
        lines = file.read_bytes().split(b"\n")
        for line in lines[:-1]:  # complete lines (each is one write)
            did, stamp, fallback = line.decode().split()
            assert fallback == "0", "the engine fell back: not a real decision"
            acks.append((did, float(stamp), k))
        assert len(lines) > 1000, f"{file.name}: only {len(lines) - 1} decisions in {DECIDING_S} s"
    return acks, killed_at


def longest_stall(acks: list[tuple[str, float, int]], killed_at: float) -> float:
    """Longest pause of any child's decide loop in the last ``STALL_LOOKBACK_S`` before the kill.

    A pause is the time between two acknowledgements of one child, or from its last one to the
    kill (each decision takes well under a millisecond, so a long pause is time the child was
    kept from running).
    """
    since = killed_at - STALL_LOOKBACK_S
    last: dict[int, float] = {}
    stall = 0.0
    for _, stamp, child in sorted(acks, key=lambda ack: ack[1]):
        if child in last and stamp >= since:
            stall = max(stall, stamp - max(last[child], since))
        last[child] = stamp
    return max([stall, *(killed_at - stamp for stamp in last.values())])


def loss_and_bound(
    path: Path, acks: list[tuple[str, float, int]], killed_at: float
) -> tuple[float, float, float, int]:
    """(how long before the kill the oldest lost decision was acknowledged, the bound, the
    longest stall, decisions lost)."""
    stored = stored_ids((str(path), ""))
    lost = [stamp for did, stamp, _ in acks if did not in stored]
    window = killed_at - min(lost) if lost else 0.0
    stall = longest_stall(acks, killed_at)
    return window, FLUSH_INTERVAL + LOAD_MARGIN + min(stall, MAX_STALL_ALLOWANCE), stall, len(lost)


def test_longest_stall_counts_gaps_of_each_child_and_the_wait_for_the_kill():
    acks = [("a", 9.4, 0), ("b", 9.6, 0), ("c", 9.7, 1), ("d", 9.8, 0), ("e", 9.95, 1)]
    acks.append(("f", 9.98, 0))
    # child 0: 9.4 -> 9.6 clipped to the look-back (from 9.5): 0.1, then 0.2, 0.18, 0.02 to the
    # kill; child 1: 9.7 -> 9.95: 0.25, then 0.05
    assert longest_stall(acks, killed_at=10.0) == pytest.approx(0.25)
    # a child that stopped acknowledging 0.3 s before the kill stalled that long
    assert longest_stall([("a", 9.7, 0), ("b", 9.99, 1)], killed_at=10.0) == pytest.approx(0.3)


@pytest.mark.slow
@pytest.mark.parametrize("n_procs", [1, 2], ids=["1-process", "2-processes"])
def test_batch_mode_bound_holds_under_full_load(tmp_path, sim_contexts, n_procs):
    path = tmp_path / "load.db"
    acks, killed_at = kill_under_full_load(path, tmp_path, n_procs, sim_contexts[:300])
    window, bound, stall, n_lost = loss_and_bound(path, acks, killed_at)
    print(
        f"\nbatch kill -9 under full load, {n_procs} process(es): {len(acks)} acknowledged in "
        f"{DECIDING_S} s, {n_lost} lost, oldest lost acknowledged {window * 1000:.1f} ms "
        f"before the kill; longest stall {stall * 1000:.1f} ms, bound {bound * 1000:.0f} ms"
    )
    assert window <= bound, (
        f"lost decisions acknowledged {window * 1000:.0f} ms before the kill "
        f"(bound {bound * 1000:.0f} ms, longest stall {stall * 1000:.0f} ms)"
    )


@pytest.mark.slow
def test_the_full_load_bound_fails_a_writer_that_commits_late(tmp_path, sim_contexts):
    """The negative control: a writer that commits 2 s after each decision (flush_interval 4 s,
    no commit by count) loses every decision of the 1.5 s run, which the bound, stall allowance
    included, rejects."""
    path = tmp_path / "late.db"
    acks, killed_at = kill_under_full_load(path, tmp_path, 1, sim_contexts[:300], 4.0, 10**7)
    window, bound, _, n_lost = loss_and_bound(path, acks, killed_at)
    assert n_lost == len(acks) and window > 2 * bound
