-- Flow control (issue 22), as docjobs keeps it on the local provider: the slots of
-- concurrency limits, the windows of throttles and rate limits, and the latest send
-- of each debounced key. Every row expires: maintenance deletes it after expires_at.

CREATE TABLE flow_slot (
    job        text NOT NULL,
    key        text NOT NULL,
    -- The job id running in the slot.
    holder     text NOT NULL,
    -- A worker killed while running the job frees its slot here.
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (job, key, holder)
);

CREATE TABLE flow_window (
    job          text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('throttle', 'rate_limit')),
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    runs         integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (job, kind, key, window_start)
);

CREATE TABLE flow_debounce (
    job        text NOT NULL,
    key        text NOT NULL,
    -- The job id of the latest send, the one that runs, and when it was sent (the
    -- message's timestamp, ms): a note that arrives late does not replace a newer one.
    latest     text NOT NULL,
    latest_ms  bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (job, key)
);

CREATE INDEX flow_slot_expires ON flow_slot (expires_at);
CREATE INDEX flow_window_expires ON flow_window (expires_at);
CREATE INDEX flow_debounce_expires ON flow_debounce (expires_at);
