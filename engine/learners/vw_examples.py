"""VW examples kept for the life of a workspace and refilled in place for each prediction.

Handing VW a decision as text costs two steps on every call: Python formats ~30 numbers into a
string, and VW parses it back. :class:`PredictionExamples` skips both. It builds the action
examples once (from their text lines), keeps one ``shared`` example, and for each prediction
swaps the shared example's ``U`` features for the new values, pushed as (pre-computed hash,
value) pairs through VW's own bindings (``pylibvw``). VW's multi-line predict then runs on
examples it has seen before; the action examples are never modified.

Only predictions take this path. Updates keep going through the text parser and VW's
``finish_example``, which keeps VW's statistics (its learning-rate clock among them): a
prediction changes no weight and no statistic that learning reads.

:meth:`PredictionExamples.build` checks, on a probe vector, that the examples it fills hold
exactly the features the text parser would produce (same namespaces, hashes and values), and
returns None if they do not or if the bindings lack a call it needs (VW options that transform
parsed text, such as ``--ignore`` or ``--ngram``, make the check fail). The learner then stays
on the text path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import vowpalwabbit

try:
    import pylibvw
except ImportError:  # pragma: no cover - every vowpalwabbit 9.x wheel ships it
    pylibvw = None

__all__ = ["PredictionExamples", "native_calls"]

logger = logging.getLogger(__name__)

_SHARED_NAMESPACE = "U"
_EXAMPLE_CALLS = (
    "erase_namespace",
    "ensure_namespace_exists",
    "push_feature_list",
    "get_action_scores",
    "num_namespaces",
    "namespace",
    "num_features_in",
    "feature",
    "feature_weight",
)
_WORKSPACE_CALLS = (
    "setup_example",
    "unsetup_example",
    "predict_multi",
    "hash_space",
    "hash_feature",
)


class PredictionExamples:
    """A ``shared`` example and one example per action, reused for every prediction.

    Build it with :meth:`build`. Not thread-safe: the owner serialises calls (the VW learner
    holds its lock around every prediction).
    """

    def __init__(
        self, ws: vowpalwabbit.Workspace, feature_tokens: Sequence[str], action_lines: Sequence[str]
    ) -> None:
        label = pylibvw.vw.lContextualBandit
        self._ws = ws
        self._ns = ord(_SHARED_NAMESPACE)
        self._ns_hash = ws.hash_space(_SHARED_NAMESPACE)
        self._hashes = [ws.hash_feature(token, self._ns_hash) for token in feature_tokens]
        self._shared = pylibvw.example(ws, label, f"shared |{_SHARED_NAMESPACE}")
        self._shared.ensure_namespace_exists(self._ns)  # erase_namespace keeps it from then on
        self._actions = [pylibvw.example(ws, label, line) for line in action_lines]
        self._lists: dict[tuple[bool, ...], list[pylibvw.example]] = {}  # by eligibility

    @classmethod
    def build(
        cls,
        ws: vowpalwabbit.Workspace,
        feature_tokens: Sequence[str],
        action_lines: Sequence[str],
        shared_template: str,
    ) -> PredictionExamples | None:
        """Examples for ``ws``, or None when they would not match the text path.

        ``feature_tokens`` are the VW names of the shared features, ``action_lines`` the text
        of each action's example and ``shared_template`` the ``%``-template of the shared
        line (one ``%.9g`` per feature) that the text path uses.
        """
        if (
            pylibvw is None
            or not all(callable(getattr(pylibvw.example, n, None)) for n in _EXAMPLE_CALLS)
            or not all(callable(getattr(pylibvw.vw, n, None)) for n in _WORKSPACE_CALLS)
        ):
            return None
        # the action examples are parsed from their own text, so only the shared one is compared
        try:
            examples = cls(ws, feature_tokens, action_lines)
            probe = [
                0.5 + 0.25 * i for i in range(len(feature_tokens))
            ]  # exact in float32 and in text
            examples._fill(probe)
            examples._fill(probe)  # a refill is what every prediction does
            label = pylibvw.vw.lContextualBandit
            parsed = pylibvw.example(ws, label, shared_template % tuple(probe))
            same = _features(parsed) == _features(examples._shared)
        except (RuntimeError, TypeError, ValueError) as exc:
            logger.debug("VW prediction examples unavailable: %s", exc)
            return None
        if not same:
            logger.debug("VW prediction examples differ from parsed text; using the text path")
            return None
        return examples

    def _fill(self, values: Sequence[float]) -> None:
        """Replace the shared example's features with ``values``.

        Zeros are left out, as VW's text parser does.
        """
        shared, ws, ns = self._shared, self._ws, self._ns
        shared.erase_namespace(ns)
        ws.unsetup_example(shared)
        shared.push_feature_list(
            ws, ns, self._ns_hash, list(zip(self._hashes, values, strict=True))
        )
        ws.setup_example(shared)

    def predict(self, values: Sequence[float], eligible: Sequence[bool]) -> list[float]:
        """VW's scores (its pmf under ``cb_explore_adf``) over the eligible actions, in order."""
        self._fill(values)
        key = tuple(eligible)
        examples = self._lists.get(key)
        if examples is None:  # at most 2 ** n_actions lists
            examples = [
                self._shared,
                *(e for e, ok in zip(self._actions, eligible, strict=True) if ok),
            ]
            self._lists[key] = examples
        pylibvw.vw.predict_multi(self._ws, examples)
        return self._shared.get_action_scores()


def _features(example: pylibvw.example) -> list[tuple[int, list[tuple[int, float]]]]:
    """(namespace, [(index, value)...]) of every namespace of a set-up example."""
    out = []
    for i in range(example.num_namespaces()):
        ns = example.namespace(i)
        features = [
            (example.feature(ns, j), example.feature_weight(ns, j))
            for j in range(example.num_features_in(ns))
        ]
        out.append((ns, features))
    return out


def native_calls(ws: vowpalwabbit.Workspace) -> bool:
    """Whether ``ws`` offers the native calls the fast path needs (all vowpalwabbit 9.x do)."""
    needed = ("predict_multi", "learn_multi", "_finish_example_multi_ex")
    return (
        pylibvw is not None
        and callable(getattr(ws, "_parse", None))
        and all(callable(getattr(pylibvw.vw, name, None)) for name in needed)
        and callable(getattr(pylibvw.example, "get_action_scores", None))
    )
