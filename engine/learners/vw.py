"""Vowpal Wabbit ``--cb_explore_adf`` behind the :class:`Learner` interface.

Each decision is one multi-line example: a shared line (namespace ``U``: the context vector as
``name:value``) and one line per *eligible* action (namespace ``A``: a one-hot id plus
descriptors such as discount depth), with ``-q UA`` so every context feature gets a per-action
weight. Ineligible actions are never shown to VW, hence get probability 0. VW minimises cost, so
it learns ``cost = -reward / reward_scale``. A VW workspace is not thread-safe; the base class's
lock serialises every call.

Speed: ``Workspace.predict``/``learn`` wrap each parsed line in a Python ``Example`` object, which
costs more than VW's own parse and predict of a 7-action example. When the bindings
underneath (``pylibvw``) have the calls needed, the learner calls VW's multi-line predict/learn
on native examples directly: updates parse their text in C++, and predictions skip text
altogether by refilling examples kept for the workspace's life
(:class:`~engine.learners.vw_examples.PredictionExamples`). Otherwise it uses the public methods.
Both paths give the same predictions (to float32 rounding of the text) and identical updates
(tested).

Whitening (``whiten_after > 0``): SGD learns slowly along directions in which context features are
correlated. The learner then keeps its first ``whiten_after`` updates, fits a
:class:`~engine.learners.whitening.Whitening` map on their contexts, starts a fresh VW workspace
(same options and seed) and replays those updates on whitened contexts; every later prediction
and update sees whitened contexts. Callers keep passing raw feature vectors.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import vowpalwabbit

try:  # VW's own bindings, under the ``Workspace`` wrapper (see ``native_calls``)
    import pylibvw
except ImportError:  # pragma: no cover - every vowpalwabbit 9.x wheel ships it
    pylibvw = None

from engine.validation import (
    check_choice,
    check_integer,
    check_non_negative,
    check_positive,
    check_probability,
)

from .base import Learner
from .vw_examples import PredictionExamples, native_calls
from .vw_options import check_vw_model, parse_extra_args
from .vw_state import saved_whitening, workspace_bytes, workspace_from_bytes
from .vw_text import (
    action_lines,
    check_action_features,
    check_interactions,
    default_action_features,
    shared_template,
    vw_name,
    vw_seed,
    vw_values,
)
from .whitening import Whitening

__all__ = ["EXPLORATIONS", "VWLearner", "default_action_features"]

logger = logging.getLogger(__name__)

EXPLORATIONS = ("epsilon", "squarecb", "bag", "cover", "rnd", "softmax")
CB_TYPES = ("mtr", "dr", "ips", "dm")


class VWLearner(Learner):
    """Contextual bandit with Vowpal Wabbit's ``cb_explore_adf`` reduction.

    Parameters
    ----------
    exploration
        One of ``EXPLORATIONS``: ``"epsilon"`` (epsilon-greedy), ``"squarecb"``
        (``gamma_scale``, ``gamma_exponent``), ``"bag"`` (``bag_size`` bootstrapped policies,
        mixed with ``epsilon``), ``"cover"`` (``cover_size`` policies, ``epsilon``), ``"rnd"``
        (random network distillation, ``rnd_size``, ``epsilon``), ``"softmax"``
        (``softmax_lambda``).
    epsilon
        Uniform exploration for ``epsilon``/``bag``/``cover``/``rnd``, in [0, 1] (unused by
        ``squarecb`` and ``softmax``).
    learning_rate, power_t, l2
        VW's ``-l``, ``--power_t`` and ``--l2``.
    cb_type
        Policy-evaluation method in ``CB_TYPES`` (VW's ``--cb_type``).
    interactions
        Namespace interactions, e.g. ``("UA",)`` (namespaces ``U`` shared, ``A`` action).
    bit_precision
        Hash table size, ``-b`` (1..30).
    action_features
        Optional ``{action_name: {feature: value}}`` overriding :func:`default_action_features`.
    extra_args
        Further VW options (shell syntax), from the allow-list
        :data:`~engine.learners.vw_options.EXTRA_OPTIONS` of learning and exploration options
        (e.g. ``"--ignore U --noconstant"``); any other option, notably one that reads or writes
        a file, raises ValueError naming it.
    whiten_after
        Updates after which contexts are whitened (see the module docstring); 0 (default) never.
    whiten_floor
        Eigenvalue floor of the whitening map, relative to the mean eigenvalue, in [0, 1].
    seed
        int, ``np.random.Generator`` or None; sets VW's ``--random_seed``.

    Updates show VW every action with the label on the taken one (the eligibility at decision
    time is not part of ``update``); with the default ``cb_type="mtr"`` VW regresses only the
    taken action's example, so the other actions' presence does not change what is learnt.

    >>> vw = VWLearner(["none", "coupon_5", "recall_message"], ["views", "price"],
    ...                exploration="epsilon", epsilon=0.3, seed=0)
    >>> x = np.array([3.0, 59.9])
    >>> for _ in range(30):
    ...     vw.update(x, 2, 0.5, 1.0)
    >>> vw.probabilities(x, np.array([True, False, True])).round(2).tolist()
    [0.15, 0.0, 0.85]
    """

    def __init__(
        self,
        action_names: Sequence[str],
        feature_names: Sequence[str],
        *,
        exploration: str = "squarecb",
        epsilon: float = 0.05,
        gamma_scale: float = 10.0,
        gamma_exponent: float = 0.5,
        bag_size: int = 5,
        cover_size: int = 4,
        rnd_size: int = 3,
        softmax_lambda: float = 10.0,
        learning_rate: float = 0.5,
        power_t: float = 0.5,
        l2: float = 0.0,
        cb_type: str = "mtr",
        interactions: Sequence[str] = ("UA",),
        bit_precision: int = 18,
        action_features: Mapping[str, Mapping[str, float]] | None = None,
        extra_args: str = "",
        whiten_after: int = 0,
        whiten_floor: float = 0.15,
        reward_scale: float = 10.0,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(action_names, feature_names, reward_scale=reward_scale)
        self.exploration = check_choice(exploration, "exploration", EXPLORATIONS)
        self.epsilon = check_probability(epsilon, "epsilon")
        self.gamma_scale = check_positive(gamma_scale, "gamma_scale")
        self.gamma_exponent = check_non_negative(gamma_exponent, "gamma_exponent")
        self.bag_size = check_integer(bag_size, "bag_size", low=1)
        self.cover_size = check_integer(cover_size, "cover_size", low=1)
        self.rnd_size = check_integer(rnd_size, "rnd_size", low=1)
        self.softmax_lambda = check_non_negative(softmax_lambda, "softmax_lambda")
        self.learning_rate = check_positive(learning_rate, "learning_rate")
        self.power_t = check_non_negative(power_t, "power_t")
        self.l2 = check_non_negative(l2, "l2")
        self.cb_type = check_choice(cb_type, "cb_type", CB_TYPES)
        self.interactions = check_interactions(interactions)
        self.bit_precision = check_integer(bit_precision, "bit_precision", low=1, high=30)
        self.action_features = check_action_features(action_features, self.action_names)
        self._extra_tokens = parse_extra_args(extra_args)
        self.extra_args = extra_args
        self.whiten_after = check_integer(whiten_after, "whiten_after", low=0)
        self.whiten_floor = check_probability(whiten_floor, "whiten_floor")
        self._whitening: Whitening | None = None
        # updates kept until the whitening is fitted: (x, action, probability, scaled reward)
        self._warmup: list[tuple[np.ndarray, int, float, float]] | None = (
            [] if self.whiten_after else None
        )
        self.seed = seed
        self._vw_seed = vw_seed(seed)
        self._shared_template = shared_template(self.feature_names)
        self._action_lines = action_lines(self.action_names, self.action_features)
        self._ws = vowpalwabbit.Workspace(arg_list=self._vw_args())
        self._native = native_calls(self._ws)
        self._examples = self._prediction_examples(self._ws)
        # finish the workspace when the learner is collected or at interpreter exit (VW's own
        # __del__ fails noisily during interpreter shutdown)
        self._finalizer = weakref.finalize(self, self._ws.finish)

    @property
    def whitening(self) -> Whitening | None:
        """The fitted whitening map, or None (off, or still warming up)."""
        return self._whitening

    @property
    def vw_examples(self) -> float:
        """Examples in VW's statistics since construction or loading.

        Every update counts, and every prediction made through text (predictions through kept
        examples are not counted).
        """
        with self._lock:
            return float(self._ws.get_weighted_examples())

    def _vw_args(self, with_seed: bool = True) -> list[str]:
        args = [
            "--cb_explore_adf", "--quiet", "--cb_type", self.cb_type,
            "-b", str(self.bit_precision),
            "-l", repr(self.learning_rate), "--power_t", repr(self.power_t),
        ]  # fmt: skip
        if with_seed:  # a saved model carries its own (possibly advanced) random state
            args += ["--random_seed", str(self._vw_seed)]
        if self.l2 > 0:
            args += ["--l2", repr(self.l2)]
        for interaction in self.interactions:
            args += ["--interactions", interaction]
        args += {
            "epsilon": ["--epsilon", repr(self.epsilon)],
            "squarecb": [
                "--squarecb", "--gamma_scale", repr(self.gamma_scale),
                "--gamma_exponent", repr(self.gamma_exponent),
            ],
            "bag": ["--bag", str(self.bag_size), "--epsilon", repr(self.epsilon)],
            "cover": ["--cover", str(self.cover_size), "--epsilon", repr(self.epsilon)],
            "rnd": ["--rnd", str(self.rnd_size), "--epsilon", repr(self.epsilon)],
            "softmax": ["--softmax", "--lambda", repr(self.softmax_lambda)],
        }[self.exploration]  # fmt: skip
        return args + self._extra_tokens

    def _prediction_examples(self, ws: vowpalwabbit.Workspace) -> PredictionExamples | None:
        tokens = [vw_name(n) for n in self.feature_names]
        return PredictionExamples.build(ws, tokens, self._action_lines, self._shared_template)

    # ------------------------------------------------------------------ example strings
    def _shared(self, x: np.ndarray) -> str:
        if self._whitening is not None:
            x = self._whitening.transform(x)
        return self._shared_template % tuple(vw_values(x).tolist())

    def _labelled(self, shared: str, action: int, probability: float, reward: float) -> list[str]:
        lines = [shared, *self._action_lines]
        lines[action + 1] = f"0:{-reward:.7g}:{probability:.7g} {lines[action + 1]}"
        return lines

    # ------------------------------------------------------------------ hooks
    def _probabilities(self, x: np.ndarray, eligible: np.ndarray) -> list[float]:
        return self._probabilities_list(x, eligible.tolist())

    def _probabilities_list(self, x: np.ndarray, eligible: list[bool]) -> list[float]:
        if self._whitening is not None:
            x = self._whitening.transform(x)
        return self._predict(x.tolist(), eligible)

    def _predict(self, values: list[float], eligible: list[bool]) -> list[float]:
        """VW's pmf for shared feature ``values``, spread back to all actions (0 if ineligible).

        ``values`` are whitened if the learner whitens; VW stores them as float32.
        """
        if self._native and self._examples is not None:
            pmf = self._examples.predict(values, eligible)
        else:
            lines = [self._shared_template % tuple(vw_values(np.asarray(values)).tolist())]
            lines += [line for line, ok in zip(self._action_lines, eligible, strict=True) if ok]
            pmf = self._vw_predict(lines)
        n_eligible = sum(eligible)
        if len(pmf) != n_eligible:
            raise RuntimeError(f"VW returned {len(pmf)} probabilities for {n_eligible} actions")
        if n_eligible == len(eligible):
            return pmf
        scores = iter(pmf)
        return [next(scores) if ok else 0.0 for ok in eligible]

    def _probabilities_batch(self, X: np.ndarray, eligible: np.ndarray) -> np.ndarray:
        if self._whitening is not None:
            X = self._whitening.transform(X)
        rows = zip(X.tolist(), eligible.tolist(), strict=True)
        return np.array([self._predict(x, mask) for x, mask in rows])

    def _vw_predict(self, lines: list[str]) -> list[float]:
        if not self._native:
            return self._ws.predict(lines)
        examples = self._ws._parse("\n".join(lines))
        try:
            pylibvw.vw.predict_multi(self._ws, examples)
            return examples[0].get_action_scores()
        finally:
            pylibvw.vw._finish_example_multi_ex(self._ws, examples)

    def _vw_learn(self, lines: list[str]) -> None:
        if not self._native:
            self._ws.learn(lines)
            return
        examples = self._ws._parse("\n".join(lines))
        try:
            pylibvw.vw.learn_multi(self._ws, examples)
        finally:
            pylibvw.vw._finish_example_multi_ex(self._ws, examples)

    def _update(self, x: np.ndarray, action: int, probability: float, reward: float) -> None:
        self._vw_learn(self._labelled(self._shared(x), action, probability, reward))
        if self._warmup is not None:
            self._warmup.append((np.array(x, dtype=np.float64), action, probability, reward))
            if len(self._warmup) >= self.whiten_after:
                self._start_whitening()

    def _start_whitening(self) -> None:
        """Fit the whitening map on the warm-up contexts, restart VW and replay the warm-up."""
        warmup, self._warmup = self._warmup or [], None
        self._whitening = Whitening.fit(np.array([row[0] for row in warmup]), self.whiten_floor)
        self._replace_workspace(vowpalwabbit.Workspace(arg_list=self._vw_args()))
        for x, action, probability, reward in warmup:  # no longer warming up: plain updates
            self._update(x, action, probability, reward)
        logger.info("VW learner: contexts whitened after %d updates", len(warmup))

    def _replace_workspace(self, ws: vowpalwabbit.Workspace) -> None:
        self._finalizer()  # finishes the workspace being replaced
        self._ws = ws
        self._native = native_calls(ws)
        self._examples = self._prediction_examples(ws)
        self._finalizer = weakref.finalize(self, ws.finish)

    def _update_batch(
        self, X: np.ndarray, actions: np.ndarray, probabilities: np.ndarray, rewards: np.ndarray
    ) -> None:
        if self._warmup is not None:  # one at a time until the whitening is fitted
            k = min(len(X), self.whiten_after - len(self._warmup))
            for x, a, p, r in zip(
                X[:k],
                actions[:k].tolist(),
                probabilities[:k].tolist(),
                rewards[:k].tolist(),
                strict=True,
            ):
                self._update(x, a, p, r)
            X, actions, probabilities, rewards = X[k:], actions[k:], probabilities[k:], rewards[k:]
        if self._whitening is not None:
            X = self._whitening.transform(X)
        template = self._shared_template
        labels = zip(actions.tolist(), probabilities.tolist(), rewards.tolist(), strict=True)
        for x, (a, p, r) in zip(vw_values(X).tolist(), labels, strict=True):
            self._vw_learn(self._labelled(template % tuple(x), a, p, r))

    def _params(self) -> dict[str, Any]:
        return {
            "exploration": self.exploration,
            "epsilon": self.epsilon,
            "gamma_scale": self.gamma_scale,
            "gamma_exponent": self.gamma_exponent,
            "bag_size": self.bag_size,
            "cover_size": self.cover_size,
            "rnd_size": self.rnd_size,
            "softmax_lambda": self.softmax_lambda,
            "learning_rate": self.learning_rate,
            "power_t": self.power_t,
            "l2": self.l2,
            "cb_type": self.cb_type,
            "interactions": list(self.interactions),
            "bit_precision": self.bit_precision,
            "action_features": self.action_features,
            "extra_args": self.extra_args,
            "whiten_after": self.whiten_after,
            "whiten_floor": self.whiten_floor,
        }

    def _get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = {"vw_model": np.frombuffer(workspace_bytes(self._ws), dtype=np.uint8)}
        if self._whitening is not None:
            arrays["whiten_matrix"] = self._whitening.matrix
            arrays["whiten_offset"] = self._whitening.offset
        if self._warmup:
            arrays["warmup_x"] = np.array([row[0] for row in self._warmup])
            arrays["warmup_labels"] = np.array([row[1:] for row in self._warmup], dtype=np.float64)
        return {"vw_seed": self._vw_seed}, arrays

    def _set_state(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Restore a saved state; everything is checked before VW reads the model.

        VW would otherwise merge the model header's options into its own; see
        :func:`check_vw_model`.
        """
        blob = arrays.get("vw_model")
        if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
            raise ValueError(f"state needs a 1-d uint8 array 'vw_model', found {sorted(arrays)}")
        seed = meta.get("vw_seed")
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31 - 1:
            raise ValueError(f"vw_seed == {seed!r}, must be an integer in [0, 2**31 - 1)")
        model = blob.tobytes()
        check_vw_model(model, self.bit_precision)
        whitening, warmup = saved_whitening(arrays, self.n_features, self.n_actions, self._check_X)
        self._vw_seed = seed
        self._replace_workspace(workspace_from_bytes(model, self._vw_args(False)))
        if whitening is not None:
            self._whitening = whitening
            self._warmup = None
        elif self._warmup is not None and warmup is not None:
            self._warmup = warmup
        logger.debug("restored VW model (%d bytes)", arrays["vw_model"].size)
