"""The Gymnasium shop: catalogue, shopper population, response model, single and vector envs.

This subpackage is the simulated world and nothing else. It imports nothing from ``engine`` but
the action vocabulary (:mod:`engine.actions`) and nothing from ``policies``; the applications that
run the engine and policies against it live beside it in :mod:`simulator` (``training``,
``experiments``, ``job``). ``tests/test_layering.py`` enforces both rules.
"""
