"""PostgreSQL schema of the shared decision log, created and migrated by the code.

Every schema change is a numbered :class:`Migration`; ``cartwise_schema_migrations``
records which ones a database has (one row per applied version, with the component it
belongs to), so later components (guardrail leases, model registry, trainer checkpoints)
add their tables as further migrations of the same database. :func:`migrate` applies them
under an advisory lock, so many processes may start against an empty database at once.

Vectors use the encodings of :mod:`engine.decision_log.schema` (little-endian blobs), so
both stores read back the same values.

The join runs in the database (``cartwise_join_pending``): outcome events wait in
``outcome_events`` with status ``pending`` until their decision is stored, then are joined
in arrival order (first wins; later ones are ``duplicate``), marked ``late`` when they fall
after the decision's attribution window, and ``unknown`` / ``unattributed`` when no
decision turns up within a time to live. Joins are serialised per schema by an advisory
transaction lock, so concurrent writers never deadlock on the same decision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

logger = logging.getLogger(__name__)

VERSION_TABLE = "cartwise_schema_migrations"

VERSION_TABLE_DDL = f"""
CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (
    version     integer PRIMARY KEY,
    component   text NOT NULL,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""

DECISION_LOG_V1 = """
CREATE TABLE vocabularies (
    vocab_id text PRIMARY KEY,
    kind     text NOT NULL CHECK (kind IN ('actions', 'features')),
    names    text NOT NULL
);

CREATE TABLE decisions (
    seq           bigint GENERATED ALWAYS AS IDENTITY,
    decision_id   text PRIMARY KEY,
    timestamp     double precision NOT NULL,
    user_hash     text NOT NULL,
    model_version text NOT NULL,
    action        text NOT NULL,
    action_index  integer NOT NULL,
    probability   double precision NOT NULL,
    action_set    text NOT NULL,
    probabilities bytea NOT NULL,
    eligible      bytea NOT NULL,
    feature_set   text NOT NULL,
    features      bytea NOT NULL,
    payload       text NOT NULL,
    fallback      boolean NOT NULL,
    window_closes double precision NOT NULL,
    resolved      boolean NOT NULL DEFAULT false
);
CREATE INDEX decisions_by_user ON decisions (user_hash, timestamp);
CREATE INDEX decisions_by_time ON decisions (timestamp, seq);
CREATE INDEX decisions_open ON decisions (window_closes) WHERE NOT resolved;

CREATE TABLE outcomes (
    decision_id text PRIMARY KEY,
    timestamp   double precision NOT NULL,
    reward      double precision NOT NULL,
    source      text NOT NULL CHECK (source IN ('reward', 'event', 'default')),
    order_id    text
);

CREATE TABLE outcome_events (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    event_id    text PRIMARY KEY,
    decision_id text,
    user_hash   text,
    timestamp   double precision NOT NULL,
    reward      double precision NOT NULL,
    source      text NOT NULL CHECK (source IN ('reward', 'event', 'default')),
    order_id    text,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'joined', 'duplicate', 'late', 'unknown',
                                  'unattributed')),
    joined_to   text,
    CHECK ((decision_id IS NULL) <> (user_hash IS NULL))
);
CREATE INDEX outcome_events_pending ON outcome_events (seq) WHERE status = 'pending';
CREATE INDEX outcome_events_pending_decision ON outcome_events (decision_id)
    WHERE status = 'pending';
CREATE INDEX outcome_events_pending_user ON outcome_events (user_hash) WHERE status = 'pending';
CREATE INDEX outcome_events_by_decision ON outcome_events (joined_to);

CREATE FUNCTION cartwise_outcome_resolves_decision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE decisions SET resolved = true WHERE decision_id = NEW.decision_id AND NOT resolved;
    RETURN NULL;
END $$;
CREATE TRIGGER outcome_resolves_decision AFTER INSERT ON outcomes
    FOR EACH ROW EXECUTE FUNCTION cartwise_outcome_resolves_decision();

-- With the three arrays NULL: a full sweep (every pending event; expires stale ones).
-- Otherwise only the pending events with one of these event ids, decision ids or user hashes
-- (those a write just made joinable), so a write costs no more with a long pending backlog.
CREATE FUNCTION cartwise_join_pending(backward double precision, ttl double precision,
                                      events text[] DEFAULT NULL, decision_ids text[] DEFAULT NULL,
                                      users text[] DEFAULT NULL)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    e record;
    d record;
    joined integer := 0;
    n integer;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM outcome_events WHERE status = 'pending') THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext(current_schema() || '.cartwise_join'));
    FOR e IN SELECT * FROM outcome_events AS p
              WHERE p.status = 'pending'
                AND (events IS NULL OR p.event_id = ANY(events)
                     OR p.decision_id = ANY(decision_ids) OR p.user_hash = ANY(users))
                AND (p.received_at < clock_timestamp() - make_interval(secs => ttl)
                     OR (p.decision_id IS NOT NULL
                         AND EXISTS (SELECT 1 FROM decisions AS x
                                      WHERE x.decision_id = p.decision_id))
                     OR (p.user_hash IS NOT NULL
                         AND EXISTS (SELECT 1 FROM decisions AS x
                                      WHERE x.user_hash = p.user_hash
                                        AND x.timestamp <= p.timestamp + backward
                                        AND x.window_closes > p.timestamp)))
              ORDER BY p.seq LOOP
        IF e.decision_id IS NOT NULL THEN
            SELECT x.decision_id, x.timestamp, x.window_closes INTO d
              FROM decisions AS x WHERE x.decision_id = e.decision_id;
        ELSE
            SELECT x.decision_id, x.timestamp, x.window_closes INTO d
              FROM decisions AS x
             WHERE x.user_hash = e.user_hash AND x.timestamp <= e.timestamp + backward
               AND x.window_closes > e.timestamp
             ORDER BY x.timestamp DESC, x.seq DESC LIMIT 1;
        END IF;
        IF NOT FOUND THEN
            IF e.received_at < clock_timestamp() - make_interval(secs => ttl) THEN
                UPDATE outcome_events
                   SET status = CASE WHEN e.decision_id IS NULL THEN 'unattributed'
                                     ELSE 'unknown' END
                 WHERE event_id = e.event_id;
            END IF;
            CONTINUE;
        END IF;
        IF e.source <> 'default' AND e.timestamp >= d.window_closes THEN
            UPDATE outcome_events SET status = 'late', joined_to = d.decision_id
             WHERE event_id = e.event_id;
            CONTINUE;
        END IF;
        INSERT INTO outcomes (decision_id, timestamp, reward, source, order_id)
        VALUES (d.decision_id, greatest(e.timestamp, d.timestamp), e.reward, e.source, e.order_id)
        ON CONFLICT (decision_id) DO NOTHING;
        GET DIAGNOSTICS n = ROW_COUNT;
        UPDATE outcome_events SET status = CASE WHEN n = 1 THEN 'joined' ELSE 'duplicate' END,
               joined_to = d.decision_id
         WHERE event_id = e.event_id;
        joined := joined + n;
    END LOOP;
    RETURN joined;
END $$;
"""


MODEL_LOOP_V2 = """
-- settlement order: the join function inserts outcomes under a per-schema advisory lock held
-- to commit, so this sequence is also commit order and a reader at position p never misses a
-- row that commits later with a lower number (the trainer's checkpoint relies on it)
ALTER TABLE outcomes ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE UNIQUE INDEX outcomes_by_seq ON outcomes (seq);

CREATE TABLE model_registry (
    version       bigint PRIMARY KEY CHECK (version > 0),
    model_version text NOT NULL,
    sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    parent        bigint REFERENCES model_registry (version),
    learner       text NOT NULL,
    learner_class text NOT NULL,
    first_event   bigint,
    last_event    bigint,
    n_events      bigint NOT NULL,
    trainer       text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    blob          bytea NOT NULL
);

CREATE TABLE model_current (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version    bigint NOT NULL REFERENCES model_registry (version),
    sha256     text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE model_history (
    seq      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version  bigint NOT NULL REFERENCES model_registry (version),
    previous bigint REFERENCES model_registry (version),
    reason   text NOT NULL CHECK (reason IN ('publish', 'promote', 'rollback')),
    undone   boolean NOT NULL DEFAULT false,
    at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE trainer_checkpoint (
    name       text PRIMARY KEY,
    position   bigint NOT NULL,
    version    bigint REFERENCES model_registry (version),
    learner    text NOT NULL,
    n_events   bigint NOT NULL,
    holder     text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE budget_ledger (
    day      bigint PRIMARY KEY,
    budget   double precision NOT NULL CHECK (budget >= 0),
    reserved double precision NOT NULL DEFAULT 0 CHECK (reserved >= 0)
);

CREATE TABLE budget_leases (
    lease_id   text PRIMARY KEY,
    day        bigint NOT NULL REFERENCES budget_ledger (day),
    holder     text NOT NULL,
    reserved   double precision NOT NULL DEFAULT 0,
    returned   double precision NOT NULL DEFAULT 0,
    closed     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contact_caps (
    user_hash text PRIMARY KEY,
    times     double precision[] NOT NULL
);
"""

INDEX_PLANS_V3 = """
-- PL/pgSQL caches each statement's plan per session. A plan made while the tables were nearly
-- empty scanned them whole, and a long-lived connection (an order service's, a writer's) kept
-- that plan as the tables grew, until an autoanalyze invalidated it: every join then read every
-- decision. Every statement of these functions is a lookup by an indexed key, so they are
-- planned with the indexes whatever the tables' size.
ALTER FUNCTION cartwise_join_pending(double precision, double precision, text[], text[], text[])
    SET enable_seqscan = off;
ALTER FUNCTION cartwise_outcome_resolves_decision() SET enable_seqscan = off;
"""


@dataclass(frozen=True)
class Migration:
    """One schema step: applied once, in version order, inside one transaction."""

    version: int
    component: str
    description: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "decision_log",
        "decisions, outcomes, outcome events and the in-database join",
        DECISION_LOG_V1,
    ),
    Migration(
        2,
        "model_loop",
        "settlement order, model registry and pointer, trainer checkpoint, budget leases,"
        " contact caps",
        MODEL_LOOP_V2,
    ),
    Migration(
        3,
        "decision_log",
        "the join and settlement functions look rows up by their indexes whatever the tables' size",
        INDEX_PLANS_V3,
    ),
)

#: Version of the newest migration this code knows.
SCHEMA_VERSION = MIGRATIONS[-1].version

#: Advisory lock key (with the schema name) held while migrating.
MIGRATION_LOCK = "cartwise_migrate"


def migrate(conn: psycopg.Connection) -> int:
    """Bring the schema on ``conn``'s search path to :data:`SCHEMA_VERSION`.

    Returns:
        The schema version found before.

    Raises:
        ValueError: The database is newer than this code.
    """
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))", (MIGRATION_LOCK,)
        )
        conn.execute(VERSION_TABLE_DDL)
        row = conn.execute(f"SELECT coalesce(max(version), 0) FROM {VERSION_TABLE}").fetchone()
        if row is None:
            raise psycopg.DataError("the schema version query returned no row, expected one")
        found = int(row[0])
        if found > SCHEMA_VERSION:
            raise ValueError(
                f"decision log schema version == {found}, this code knows <= {SCHEMA_VERSION}"
            )
        for step in MIGRATIONS:
            if step.version > found:
                conn.execute(step.sql)
                conn.execute(
                    f"INSERT INTO {VERSION_TABLE} (version, component, description)"
                    " VALUES (%s, %s, %s)",
                    (step.version, step.component, step.description),
                )
                logger.info(
                    "decision log schema migrated to version %d (%s)",
                    step.version,
                    step.description,
                )
    return found
