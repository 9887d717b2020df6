-- The notification outbox: one row per notification and channel, so a restart
-- neither loses a notice nor sends it twice. `state` is pending, delivered or
-- abandoned; the last two are final and never rewritten (the upsert's WHERE).
-- `key` and `channel` compare byte by byte (COLLATE "C"), as SQLite's BINARY
-- does, so rows sharing a millisecond come back in the same order on both.

CREATE TABLE deliveries (
    key TEXT COLLATE "C" NOT NULL,
    channel TEXT COLLATE "C" NOT NULL,
    payload TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at_ms BIGINT NOT NULL,
    last_error TEXT,
    done_at_ms BIGINT,
    PRIMARY KEY (key, channel)
);
CREATE INDEX deliveries_created ON deliveries (created_at_ms);
