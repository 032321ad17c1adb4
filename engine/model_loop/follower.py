"""Serving engines follow the store's current model: poll, verify, hot-swap.

A :class:`ModelFollower` runs one daemon thread per engine. Every ``poll_seconds`` it reads the
current pointer of the store's registry (one indexed single-row query, see
:func:`engine.model_loop.registry.current`); when the pointer names a version it has not seen, it
fetches the row, verifies it (the sha256 of the bytes against the pointer and the row, the model
file's own checksum and schema, see :func:`engine.model_loop.registry.load_model`) and hands it to
``install``, which checks it fits the engine (actions, features, learner class) and swaps it in.
A model that fails any check is refused: counted (``refused``), logged, and the old model keeps
serving; the same pointer is not retried until it changes. A store error is counted (``errors``)
and the connection is opened again at the next poll.

The swap replaces the engine's served model as one attribute, so a decision never mixes two
models; each learner guards its own state (the VW workspace included) with its lock, and the
follower builds a new learner rather than touching the served one.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from engine.model_loop.registry import connect, current, load_model
from engine.persistence import SavedModel
from engine.validation import check_positive

__all__ = ["ModelFollower"]

logger = logging.getLogger(__name__)


class ModelFollower:
    """Polls a store's current model and installs each new version.

    Args:
        url: the ``postgresql://`` store.
        install: called with ``(saved model, registry version)``; raises ``ValueError`` (e.g.
            :class:`~engine.model_file.ModelFileError`) to refuse the model.
        poll_seconds: seconds between polls.
        start: start the thread now (the first poll is immediate).
    """

    def __init__(
        self,
        url: str,
        install: Callable[[SavedModel, int], None],
        *,
        poll_seconds: float = 10.0,
        start: bool = True,
    ) -> None:
        self.url = url
        self.poll_seconds = check_positive(poll_seconds, "model_poll_seconds")
        self._install = install
        self._conn: psycopg.Connection[Any] | None = None
        self._seen: tuple[int, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._counts = {"polls": 0, "swaps": 0, "refused": 0, "errors": 0}
        self.version: int | None = None
        self.last_refused: str | None = None
        self._thread = threading.Thread(
            target=self._run, name="cartwise-model-follower", daemon=True
        )
        if start:
            self._thread.start()

    def poll(self) -> bool:
        """One poll: install the current version if it is new; True when a model was swapped."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self.url)
            pointer = current(self._conn)
            self._count("polls")
            if pointer is None or pointer == self._seen:
                return False
            version, sha256 = pointer
            try:
                _, saved = load_model(self._conn, version, sha256)
                self._install(saved, version)
            except ValueError as exc:  # ModelFileError included: refuse, keep serving
                self._seen = pointer
                self._count("refused")
                self.last_refused = f"version {version}: {exc}"[:500]
                logger.warning("model follower refused registry version %d: %s", version, exc)
                return False
            self._seen, self.version = pointer, version
            self._count("swaps")
            logger.info("model follower now serves registry version %d", version)
            return True
        except psycopg.Error as exc:
            self._count("errors")
            logger.warning("model follower: store error (%s: %s)", type(exc).__name__, exc)
            self._drop()
            return False

    def stats(self) -> dict[str, Any]:
        """Counters (polls, swaps, refused, errors), the version served and the last refusal."""
        with self._lock:
            out: dict[str, Any] = dict(self._counts)
        out["version"] = self.version
        out["last_refused"] = self.last_refused
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling and close the connection."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._drop()

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                self.poll()
            except Exception:  # the thread must survive anything; the old model keeps serving
                self._count("errors")
                logger.exception("model follower: poll failed")
            self._stop.wait(max(0.0, self.poll_seconds - (time.monotonic() - start)))

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1
