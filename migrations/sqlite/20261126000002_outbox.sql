-- The notification outbox: one row per notification and channel, so a restart
-- neither loses a notice nor sends it twice. `state` is pending, delivered or
-- abandoned; the last two are final and never rewritten (the upsert's WHERE).

CREATE TABLE deliveries (
    key TEXT NOT NULL,
    channel TEXT NOT NULL,
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
