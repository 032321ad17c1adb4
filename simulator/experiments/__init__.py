"""Simulated A/B experiments for growth teams.

Run arms side by side in one simulated shop (:func:`run_experiment`), analyse the result with
:mod:`engine.abtest` beside the simulator's true effect and an off-policy pre-screen
(:func:`analyse`), and write a terminal table and an HTML report (:mod:`.report`).
``cartwise abtest`` does all three.
"""

from simulator.experiments.assignment import assign, hash_fraction
from simulator.experiments.experiment import ExperimentResult, run_experiment

__all__ = ["ExperimentResult", "assign", "hash_fraction", "run_experiment"]
