"""Where ``decide``'s time goes: each stage timed alone in a loop, and inside a decide-like pass.

A companion of ``callgrind_checkout.py``, which counts instructions. On the checkout
benchmark's carts, CF model and VW engine (trained online with lag-50 rewards, logging off), it
times every stage of ``DecisionEngine._decide`` two ways: *alone*, the stage called for every
cart in its own loop (its code and data stay warm in the core's caches and branch predictors,
as a raw VW predict's do in the benchmark's blocks), and *in sequence*, the stages called one
after the other for each cart, as ``decide`` calls them. The gap between the two sums is what
the engine's code footprint costs, which an instruction count does not see::

    OPENBLAS_NUM_THREADS=1 taskset -c 1 .venv/bin/python tests/support/decide_stages.py 4000
"""

import sys
import time


def _median_us(samples: list[int]) -> float:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2] / 1e3


def measure(n: int) -> None:
    """Print each stage's p50 alone and in sequence, their sums, and decide's and raw VW's."""
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from checkout_loop import LaggedOutcomes, raw_vw_predict
    from env_contexts import simulator_contexts

    from engine import DecisionEngine
    from engine.cf import CFModel, interactions_from_contexts
    from engine.context import validate_context
    from engine.payload import action_payload
    from engine.sampling import sample_index

    contexts = simulator_contexts(n + 300)
    cf = CFModel(n_factors=16).fit(interactions_from_contexts(contexts))
    eng = DecisionEngine(seed=0, learner="vw", cf=cf)
    report = LaggedOutcomes(eng)
    for ctx in contexts:  # train online as the benchmark's loop does
        report(ctx, eng.decide(ctx))
    carts = contexts[300:]
    g, served = eng.guardrails, eng._model
    features, learner, cf = served.features, served.learner, served.features.cf
    stages = {
        "validate_context": lambda s: validate_context(s["ctx"], eng.limits),
        "user hash": lambda s: eng._hash_user(s["parsed"].user_id),
        "guardrails.eligible": lambda s: g.eligible(s["parsed"], s["hash"]),
        "cf.shopper_items": lambda s: cf.shopper_items(s["parsed"]),
        "features.transform": lambda s: features.transform(s["parsed"], s["items"]),
        "learner probabilities": lambda s: learner.decision_probabilities(s["x"], s["mask"]),
        "guardrails.apply_floor": lambda s: g.apply_floor(s["probs"], s["mask"]),
        "sample_index": lambda s: sample_index(s["probs"], s["mask"], 0.5),
        "action_payload": lambda s: action_payload(
            eng.action_names[s["a"]], s["parsed"], g, cf, s["items"], eng.recommend_k
        ),
    }
    keys = ["parsed", "hash", "mask", "items", "x", "probs", "probs", "a", "payload"]

    def run_sequence(ctx: dict, times: dict | None) -> dict:
        state: dict = {"ctx": ctx}
        for (name, stage), key in zip(stages.items(), keys, strict=True):
            start = time.perf_counter_ns()
            state[key] = stage(state)
            if times is not None:
                times[name].append(time.perf_counter_ns() - start)
        return state

    states = [run_sequence(ctx, None) for ctx in carts]
    clock = time.perf_counter_ns
    alone = {}
    for name, stage in stages.items():
        took = []
        for state in states:
            start = clock()
            stage(state)
            took.append(clock() - start)
        alone[name] = _median_us(took)
    in_sequence: dict = {name: [] for name in stages}
    for ctx in carts:
        run_sequence(ctx, in_sequence)
    decide, raw_vw = [], []
    raw = raw_vw_predict()
    for ctx in carts:
        start = clock()
        eng.decide(ctx)
        decide.append(clock() - start)
    for _ in carts:
        start = clock()
        raw(None)
        raw_vw.append(clock() - start)
    print(f"{'stage':26s} {'alone us':>9s} {'in sequence us':>15s}")
    for name in stages:
        print(f"{name:26s} {alone[name]:9.2f} {_median_us(in_sequence[name]):15.2f}")
    seq_sum = sum(_median_us(v) for v in in_sequence.values())
    print(f"{'sum of medians':26s} {sum(alone.values()):9.2f} {seq_sum:15.2f}")
    print(f"decide p50 {_median_us(decide):.2f} us, raw VW predict p50 {_median_us(raw_vw):.2f} us")


if __name__ == "__main__":
    measure(int(sys.argv[1]) if len(sys.argv) > 1 else 4000)
