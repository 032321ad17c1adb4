"""The main job, ``cartwise run``: build the shop, train, evaluate offline, A/B test, report."""

from simulator.job.config import RunConfig, load_config

__all__ = ["RunConfig", "load_config"]
