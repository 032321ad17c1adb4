"""Benchmark run hooks: a summary of every benchmark's ratios and figures at the end of the run."""

import pytest
from bench_summary import pytest_terminal_summary as _summary


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's own table
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    _summary(terminalreporter, exitstatus, config)
