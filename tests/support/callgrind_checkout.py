"""Instructions per call of the checkout benchmark's ``decide`` and of a raw VW predict.

A load-independent companion of ``test_checkout_latency_vs_raw_vw_predict``: the same carts, CF
model, engine and lag-50 rewards, but counted in instructions by valgrind's callgrind instead of
timed. Collection is switched on around each timed call only, on the calling thread (callgrind's
collection state is per thread, so the log's writer thread is not counted). Needs valgrind, its
``callgrind.h`` and a C compiler (a 6-line helper is compiled into a temporary directory)::

    valgrind --tool=callgrind --instr-atstart=no --collect-atstart=no --separate-threads=yes \\
        --callgrind-out-file=/tmp/cg/out.%p .venv/bin/python tests/support/callgrind_checkout.py \\
        sqlite 2000
    .venv/bin/python tests/support/callgrind_checkout.py --report /tmp/cg 2000

The first argument is ``sqlite``, ``off`` (logging off) or a ``postgresql://`` URL.
"""

import ctypes
import glob
import os
import re
import subprocess
import sys
import tempfile

HELPER = r"""
#include <valgrind/callgrind.h>
void cg_toggle(void) { CALLGRIND_TOGGLE_COLLECT; }
void cg_start(void) { CALLGRIND_START_INSTRUMENTATION; }
void cg_stop(void) { CALLGRIND_STOP_INSTRUMENTATION; }
void cg_dump(const char *s) { CALLGRIND_DUMP_STATS_AT(s); }
void cg_noop(void) { }
"""


def _helper() -> ctypes.CDLL:
    folder = tempfile.mkdtemp()
    source, library = os.path.join(folder, "cg.c"), os.path.join(folder, "libcg.so")
    with open(source, "w") as f:
        f.write(HELPER)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", library, source], check=True)
    return ctypes.CDLL(library)


def measure(store: str, n: int) -> None:
    """Run the three parts (empty, raw VW predict, checkout decide), ``n`` calls each."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from checkout_loop import LaggedOutcomes, raw_vw_predict
    from env_contexts import simulator_contexts

    from engine import DecisionEngine
    from engine.cf import CFModel, interactions_from_contexts

    contexts = simulator_contexts(n + 300)
    cf = CFModel(n_factors=16).fit(interactions_from_contexts(contexts))
    path = None if store == "off" else store
    if store == "sqlite":
        path = os.path.join(tempfile.mkdtemp(), "log.db")
    eng = DecisionEngine(store=path, seed=0, learner="vw", cf=cf)
    raw = raw_vw_predict()
    report = LaggedOutcomes(eng)

    for ctx in contexts[:300]:  # warm-up, as the benchmark
        report(ctx, eng.decide(ctx))
        raw(None)
    cg = _helper()
    toggle = cg.cg_toggle
    cg.cg_start()
    for _ in range(n):
        toggle()
        cg.cg_noop()
        toggle()
    cg.cg_dump(b"empty")
    for _ in range(n):
        toggle()
        raw(None)
        toggle()
    cg.cg_dump(b"raw")
    for ctx in contexts[300:]:
        toggle()
        d = eng.decide(ctx)
        toggle()
        report(ctx, d)
    cg.cg_dump(b"decide")
    cg.cg_stop()
    eng.close()


def summarise(folder: str, n: int) -> None:
    """Print instructions per call of each part (the calling thread's dumps) and the ratio."""
    parts = {}
    for path in glob.glob(os.path.join(folder, "out.*-01")):
        with open(path) as f:
            text = f.read()
        name = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
        total = re.search(r"^summary: (\d+)", text, re.M)
        if name and total:
            parts[name.group(1)] = int(total.group(1)) / n
    empty = parts["empty"]
    raw, decide = parts["raw"] - empty, parts["decide"] - empty
    print(f"raw VW predict {raw:,.0f}  decide {decide:,.0f}  ratio {decide / raw:.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "--report":
        summarise(sys.argv[2], int(sys.argv[3]))
    else:
        measure(sys.argv[1], int(sys.argv[2]))
