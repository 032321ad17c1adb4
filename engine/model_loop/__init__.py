"""The learn -> deploy loop of a PostgreSQL store shared by many checkout processes.

* :mod:`~engine.model_loop.trainer`: ``cartwise learn``, one trainer per store.
* :mod:`~engine.model_loop.registry`: versioned models, the current pointer, promote/rollback
  (``cartwise models``).
* :mod:`~engine.model_loop.follower`: serving engines poll, verify and hot-swap the current model.
* :mod:`~engine.model_loop.hooks`: what a ``postgresql://`` store adds to a
  :class:`~engine.engine.DecisionEngine` (the follower and the shared guardrails).
"""
