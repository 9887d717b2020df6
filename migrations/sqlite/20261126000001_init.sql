-- Guardian's state that must survive restarts. Timestamps are unix milliseconds
-- (BIGINT), latencies microseconds, flags 0/1 (sqlx's Any driver cannot decode
-- SQLite booleans). `seq` orders rows written in the same millisecond.

CREATE TABLE rollups (
    check_name TEXT NOT NULL,
    minute BIGINT NOT NULL,
    good BIGINT NOT NULL,
    total BIGINT NOT NULL,
    PRIMARY KEY (check_name, minute)
);
CREATE INDEX rollups_minute ON rollups (minute);

CREATE TABLE incidents (
    id TEXT PRIMARY KEY,
    check_name TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT,
    worst_latency_us BIGINT NOT NULL,
    p95_latency_us BIGINT NOT NULL,
    probes_total BIGINT NOT NULL,
    probes_bad BIGINT NOT NULL,
    revenue_at_risk_eur DOUBLE PRECISION NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX incidents_started ON incidents (started_at_ms);

CREATE TABLE backups (
    environment TEXT NOT NULL,
    id TEXT NOT NULL,
    completed_at_ms BIGINT NOT NULL,
    ok BIGINT NOT NULL,
    PRIMARY KEY (environment, id)
);
CREATE INDEX backups_latest ON backups (environment, ok, completed_at_ms);

CREATE TABLE migrations (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    description TEXT NOT NULL,
    on_breach TEXT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    finished_at_ms BIGINT
);

CREATE TABLE gate_decisions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    environment TEXT NOT NULL,
    evaluated_at_ms BIGINT NOT NULL,
    go BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    UNIQUE (environment, evaluated_at_ms)
);
CREATE INDEX gate_decisions_at ON gate_decisions (evaluated_at_ms);

CREATE TABLE actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    at_ms BIGINT NOT NULL,
    target TEXT NOT NULL,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    incident TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX actions_at ON actions (at_ms);
