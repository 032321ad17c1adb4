"""Instructions per decision of the decision log's writer steps: record path vs array path.

The writer thread's work for a batch of engine decisions, run here in the calling thread so
that callgrind's per-thread collection can count it: the record path (``to_record`` per
decision, then the SQLite write) and the array path
(:func:`~engine.decision_log.engine_batch.prepare_batch`, then the same write), each alone
("rows": checks and rows; "write": the same plus the SQLite write). The decisions are what a
VW + CF engine hands its log for the checkout benchmark's carts (simulator seed 0). Needs
valgrind, its ``callgrind.h`` and a C compiler, as ``callgrind_checkout.py``::

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no --separate-threads=yes \\
        --callgrind-out-file=/tmp/cgw/out.%p .venv/bin/python tests/support/callgrind_writer.py
    .venv/bin/python tests/support/callgrind_writer.py --report /tmp/cgw
"""

import glob
import os
import re
import sys
import tempfile

N_DECISIONS, BATCH, WINDOW = 2000, 100, 3600.0


def engine_entries(n: int) -> list:
    """The ``EngineDecision`` entries a VW + CF engine queues for ``n`` simulated carts."""
    from env_contexts import simulator_contexts

    from engine import DecisionEngine
    from engine.cf import CFModel, interactions_from_contexts

    contexts = simulator_contexts(n)
    cf = CFModel(n_factors=16).fit(interactions_from_contexts(contexts[:600]))
    store = os.path.join(tempfile.mkdtemp(), "cap.db")
    eng = DecisionEngine(store=store, seed=0, learner="vw", cf=cf)
    captured: list = []
    eng.log.append_engine_decision = captured.append
    for ctx in contexts:
        eng.decide(ctx)
    eng.close()
    return captured


def measure() -> None:
    """Count each part over ``N_DECISIONS`` decisions (after a warm-up on others)."""
    from callgrind_checkout import _helper

    from engine.decision_log.engine_batch import prepare_batch
    from engine.decision_log.store_api import open_store
    from engine.decision_log.store_rows import decision_rows

    entries = engine_entries(N_DECISIONS + 600)
    timed = [entries[s : s + BATCH] for s in range(0, N_DECISIONS, BATCH)]
    warm = [entries[s : s + BATCH] for s in range(N_DECISIONS, N_DECISIONS + 600, BATCH)]

    def records(batch):
        return [e.to_record() for e in batch]

    def prepared(batch):
        return prepare_batch(list(batch), WINDOW)[0]

    parts = {}
    for path_name, build in (("record", records), ("array", prepared)):
        parts[f"{path_name}_rows"] = (
            None,
            lambda b, build=build: decision_rows(build(b), WINDOW, set()),
        )
        store = open_store(os.path.join(tempfile.mkdtemp(), "w.db"), durability="batch")
        store.open()
        parts[f"{path_name}_write"] = (
            store,
            lambda b, build=build, store=store: store.write(build(b), [], WINDOW),
        )
    for name, (_, run) in parts.items():  # warm-up: caches, prepared statements
        for batch in warm:
            run([e._replace(decision_id=f"{e.decision_id}-{name}") for e in batch])
    cg = _helper()
    cg.cg_start()
    for name, (_, run) in parts.items():
        cg.cg_toggle()
        for batch in timed:
            run(batch)
        cg.cg_toggle()
        cg.cg_dump(name.encode())
    cg.cg_stop()


def summarise(folder: str) -> None:
    """Print instructions per decision of each part (the calling thread's dumps)."""
    for path in sorted(glob.glob(os.path.join(folder, "out.*-01"))):
        with open(path) as f:
            text = f.read()
        name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^summary: (\d+)", text, re.M)
        if name and total:
            print(
                f"{name.group(1):14s} {int(total.group(1)) / N_DECISIONS / 1000:.1f}k per decision"
            )


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) > 1 and sys.argv[1] == "--report":
        summarise(sys.argv[2])
    else:
        measure()
