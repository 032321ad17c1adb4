"""The trainer: one process per store learns from settled decisions and publishes models.

``cartwise learn --store URL`` runs a :class:`Trainer`. It reads the decisions of a PostgreSQL
store that have an outcome (joined, or the default reward of a closed window), in settlement
order (``outcomes.seq``, which is commit order, see :mod:`engine.decision_log.pg_schema`),
from the position of its checkpoint; teaches them to its learner one at a time with the
engine's update rule (:func:`engine.update_rule.teach`); and, every ``batch`` events, publishes
the model to the registry (:mod:`engine.model_loop.registry`) **and** moves its checkpoint
(position, model version) in the same transaction. A restart (after ``kill -9`` too) reloads
the model of its checkpoint and resumes after its position: nothing is learned twice or skipped.
Because
each published model is rebuilt from its own bytes before training goes on, a run killed and
restarted publishes byte for byte the models of an uninterrupted run on the same events.

Exactly one trainer is active per store: it holds a session advisory lock
(``pg_try_advisory_lock``) on the connection it reads and writes with; a second trainer waits
for it, and takes over when the first one's connection ends (it exits or dies). Each publish
moves the serving pointer (``model_current``) too, unless someone else moved it since the
trainer's previous publish (a ``promote`` or ``rollback`` by an operator is not undone).

Fallback decisions are skipped; decisions logged with other actions or without one of the
learner's features are skipped and counted (``skipped``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from engine.actions import ACTION_NAMES
from engine.features import FeatureBuilder
from engine.learners import Learner, make_learner
from engine.learners.tuned import tuned_settings
from engine.model_loop.events import SettledEvents
from engine.model_loop.registry import connect, current, insert_model, load_model, set_current
from engine.persistence import (
    check_model_fits,
    decode_saved_model,
    encode_saved_model,
    read_saved_model,
)
from engine.sampling import UniformStream
from engine.update_rule import teach
from engine.validation import check_integer, check_positive

__all__ = ["StepResult", "Trainer"]

logger = logging.getLogger(__name__)

_LEASE = "cartwise_trainer."


@dataclass
class StepResult:
    """What one training step did."""

    version: int  #: registry version published
    model_version: str  #: the model's own version string (logged with decisions)
    first_event: int  #: first and last settlement positions read
    last_event: int
    learned: int  #: events taught to the learner
    skipped: int  #: fallbacks and rows that do not fit the learner
    promoted: bool  #: whether the serving pointer now names this version
    seconds: float  #: time spent, reading to commit


@dataclass
class _State:
    learner: Learner
    features: FeatureBuilder
    position: int = 0
    version: int | None = None
    n_events: int = 0
    events: SettledEvents | None = None


class Trainer:
    """Learns from one store's settled decisions and publishes versioned models.

    Args:
        url: the ``postgresql://`` store.
        learner: learner name (``vw``, ``linucb``, ``lints``...), started from its tuned settings.
        seed: seeds the learner (and the sampling state saved with each model).
        learner_options: constructor options overriding the tuned ones.
        initial_model: a saved model file to start from (its learner, CF and risk models), when
            the store has no checkpoint yet; its learner name must be ``learner``.
        batch: events per published model (and checkpoint).
        name: the checkpoint's name (one trainer per name and store).
        promote: move the serving pointer to each published model (see the module docs).
        settle_expired: before each round, give the default reward to decisions whose
            attribution window closed by the wall clock (minus ``grace`` seconds) without an
            outcome (:meth:`DecisionLog.close_expired
            <engine.decision_log.DecisionLog.close_expired>`), so they settle and are learned.
        contact_cost: the default reward is ``-contact_cost`` (0 for ``none``), as the engine's.
        grace: seconds an outcome may still be on its way after a window closes.
    """

    def __init__(
        self,
        url: str,
        *,
        learner: str = "vw",
        seed: int = 0,
        learner_options: Mapping[str, Any] | None = None,
        initial_model: str | os.PathLike[str] | None = None,
        batch: int = 2000,
        name: str = "default",
        promote: bool = True,
        settle_expired: bool = False,
        contact_cost: float = 0.25,
        grace: float = 0.0,
    ) -> None:
        self.url = url
        self.learner_name = learner
        self.seed = seed
        self.batch = check_integer(batch, "batch", low=1)
        self.name = name
        self.promote = promote
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        base, options, floor = tuned_settings(learner)
        options.update(learner_options or {})
        self._base, self._options, self.propensity_floor = base, options, floor
        self._initial = initial_model
        self._conn: psycopg.Connection[Any] | None = None
        self._state: _State | None = None
        self._rng_state = UniformStream(seed).state()[0]
        self.skipped = 0
        self.settle_expired = settle_expired
        self.contact_cost = contact_cost
        self.grace = grace
        self._log: Any = None  # a DecisionLog on the store, to settle expired windows

    # ------------------------------------------------------------------ lease
    @property
    def active(self) -> bool:
        """Whether this trainer holds the store's lease."""
        return self._conn is not None

    def try_acquire(self) -> bool:
        """Take the lease if free (one connection, kept while training); False if held."""
        if self._conn is not None:
            return True
        conn = connect(self.url)
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtext(current_schema() || %s))",
                (_LEASE + self.name,),
            ).fetchone()
        except BaseException:
            conn.close()
            raise
        if not (row and row[0]):
            conn.close()
            return False
        self._conn = conn
        self._state = None  # reloaded from the checkpoint: another trainer may have run
        logger.info("trainer %s took the lease of %r", self.holder, self.name)
        return True

    def acquire(self, stop: threading.Event | None = None, poll: float = 1.0) -> bool:
        """Wait for the lease (checking every ``poll`` s); False if ``stop`` was set first."""
        waiting = False
        while not self.try_acquire():
            if not waiting:
                logger.warning(
                    "trainer %s: another trainer holds the lease of %r; waiting",
                    self.holder,
                    self.name,
                )
                waiting = True
            if stop is not None and stop.wait(poll):
                return False
            if stop is None:
                time.sleep(poll)
        return True

    def release(self) -> None:
        """Give the lease up (closing the connection releases the lock)."""
        conn, self._conn, self._state = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):  # broken: the server released the lock
                conn.close()

    def close(self) -> None:
        """Release the lease and close the decision log used to settle expired windows."""
        self.release()
        if self._log is not None:
            self._log.close()
            self._log = None

    # ------------------------------------------------------------------ state
    def _load(self, conn: psycopg.Connection[Any]) -> _State:
        row = conn.execute(
            "SELECT position, version, learner, n_events FROM trainer_checkpoint WHERE name = %s",
            (self.name,),
        ).fetchone()
        if row is not None and row[1] is not None:
            position, version, learner_name, n_events = row
            if learner_name != self.learner_name:
                raise ValueError(
                    f"learner == {self.learner_name!r}, the checkpoint {self.name!r} of this "
                    f"store was trained with {learner_name!r} (use another --name)"
                )
            _, saved = load_model(conn, version)
            features = check_model_fits(f"registry version {version}", saved, ACTION_NAMES)
            logger.info("trainer resumes after event %d from version %d", position, version)
            return _State(saved.learner, features, int(position), int(version), int(n_events))
        if self._initial is not None:
            saved = read_saved_model(self._initial)
            if saved.meta["learner_name"] != self.learner_name:
                raise ValueError(
                    f"learner == {self.learner_name!r}, initial model {str(self._initial)!r} "
                    f"holds {saved.meta['learner_name']!r}"
                )
            features = check_model_fits(self._initial, saved, ACTION_NAMES)
            return _State(saved.learner, features)
        features = FeatureBuilder()
        model = make_learner(
            self._base, ACTION_NAMES, features.feature_names, seed=self.seed, **self._options
        )
        return _State(model, features)

    # ------------------------------------------------------------------ training
    def step(self) -> StepResult | None:
        """Learn up to ``batch`` settled events after the checkpoint and publish them.

        Returns None if there were none. Needs the lease; a storage error releases it (and is
        raised).
        """
        conn = self._conn
        if conn is None:
            raise ValueError("Trainer.step() needs the lease: call acquire() first")
        try:
            return self._step(conn)
        except psycopg.Error:
            self.release()
            raise

    def _step(self, conn: psycopg.Connection[Any]) -> StepResult | None:
        start = time.perf_counter()
        if self._state is None:
            self._state = self._load(conn)
        state = self._state
        if state.events is None:
            state.events = SettledEvents(state.learner.action_names, state.learner.feature_names)
        rows = state.events.read(conn, state.position, self.batch)
        if not rows:
            return None
        learner, features = state.learner, state.features
        learned = skipped = 0
        for event in state.events.decode(conn, rows):
            if event is None:
                skipped += 1
                continue
            teach(
                learner,
                event.x,
                event.action,
                event.probability,
                event.reward,
                propensity_floor=self.propensity_floor,
                reward_divisor=features.reward_divisor,
            )
            learned += 1
        first, last, last_ts = SettledEvents.span(rows)
        blob_out, model_version = encode_saved_model(
            learner,
            features,
            learner_name=self.learner_name,
            action_names=ACTION_NAMES,
            propensity_floor=self.propensity_floor,
            rng_state=self._rng_state,
            saved_at=last_ts,
        )
        promoted = False
        with conn.transaction():
            version = insert_model(
                conn,
                blob_out,
                model_version=model_version,
                parent=state.version,
                learner=self.learner_name,
                learner_class=type(learner).__name__,
                first_event=first,
                last_event=last,
                n_events=learned,
                trainer=self.holder,
            )
            moved = conn.execute(
                "INSERT INTO trainer_checkpoint AS t (name, position, version, learner, n_events,"
                " holder) VALUES (%(name)s, %(pos)s, %(v)s, %(learner)s, %(n)s, %(holder)s)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
                " version = excluded.version, n_events = excluded.n_events,"
                " holder = excluded.holder, updated_at = now() WHERE t.position = %(old)s",
                {
                    "name": self.name,
                    "pos": last,
                    "v": version,
                    "learner": self.learner_name,
                    "n": state.n_events + learned,
                    "holder": self.holder,
                    "old": state.position,
                },
            ).rowcount
            if moved != 1:
                raise RuntimeError(
                    f"trainer checkpoint {self.name!r} moved under this trainer (lease lost?)"
                )
            if self.promote:
                now = current(conn)
                if now is None or now[0] == state.version:
                    set_current(conn, version, "publish")
                    promoted = True
        # go on from the published bytes, exactly as a restarted trainer would
        state.learner = decode_saved_model(blob_out, f"registry version {version}").learner
        state.position, state.version = last, version
        state.n_events += learned
        self.skipped += skipped
        seconds = time.perf_counter() - start
        logger.info(
            "trainer published version %d (%s): events %d..%d, %d learned, %d skipped, %.0f/s",
            version,
            model_version,
            first,
            last,
            learned,
            skipped,
            len(rows) / max(seconds, 1e-9),
        )
        return StepResult(version, model_version, first, last, learned, skipped, promoted, seconds)

    def settle(self, now: float | None = None) -> int:
        """Give the default reward to decisions whose window closed by ``now``; return how many.

        ``now`` defaults to the wall clock minus ``grace``.
        """
        from engine.decision_log import DecisionLog

        if self._log is None:
            cost = self.contact_cost
            self._log = DecisionLog(
                self.url,
                durability="sync",
                default_reward=lambda action: 0.0 if action == "none" else -cost,
            )
        settled = self._log.close_expired(time.time() - self.grace if now is None else now)
        if settled:
            logger.info(
                "trainer settled %d expired decisions with the default reward", len(settled)
            )
        return len(settled)

    def drain(self, stop: threading.Event | None = None) -> list[StepResult]:
        """Steps until no settled event is left (or ``stop`` is set)."""
        if self.settle_expired:
            self.settle()
        out = []
        while stop is None or not stop.is_set():
            result = self.step()
            if result is None:
                break
            out.append(result)
        return out

    def run(
        self, *, every: float = 60.0, once: bool = False, stop: threading.Event | None = None
    ) -> list[StepResult]:
        """Hold the lease (waiting for it) and train.

        Trains once over what is settled, or every ``every`` seconds until ``stop`` is set.
        Storage errors are logged and retried.
        """
        check_positive(every, "every")
        stop = stop or threading.Event()
        published: list[StepResult] = []
        while not stop.is_set():
            try:
                if not self.acquire(stop):
                    break
                published += self.drain(stop)
                if once:
                    break
            except psycopg.Error as exc:
                logger.warning("trainer: store error (%s: %s); retrying", type(exc).__name__, exc)
            stop.wait(every)
        self.close()
        return published
