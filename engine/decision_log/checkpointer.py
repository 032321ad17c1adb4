"""Background WAL checkpoints, so that commits never pay for one.

A checkpoint copies committed write-ahead-log frames into the database file and fsyncs it;
run inside a commit it delays every event of that batch (and, under load, of the next) by
tens of milliseconds. :class:`Checkpointer` runs it in its own thread instead, at most every
``interval`` seconds and only after commits happened.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 0.25


class Checkpointer:
    """Calls ``checkpoint()`` in a daemon thread after :meth:`notify`, at most every ``interval`` s.

    Failures are logged (at WARNING once per failing stretch) and never raised: data is
    already committed to the write-ahead log, a late checkpoint only lets it grow.
    """

    def __init__(
        self,
        checkpoint: Callable[[], object],
        *,
        interval: float = CHECKPOINT_INTERVAL_S,
        name: str = "decision-log-checkpoint",
    ) -> None:
        self._checkpoint = checkpoint
        self._interval = interval
        self._wanted = threading.Event()  # commits happened since the last checkpoint
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Ask for a checkpoint (cheap; called after each commit)."""
        self._wanted.set()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stop.set()
        self._wanted.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wanted.wait()
            if self._stop.is_set():
                return
            self._wanted.clear()
            try:
                self._checkpoint()
            except Exception as exc:  # storage errors must not stop the thread
                if not self._failing:
                    logger.warning(
                        "decision log checkpoint failed: %s: %s", type(exc).__name__, exc
                    )
                self._failing = True
            else:
                self._failing = False
            if self._stop.wait(self._interval):
                return
