-- Jobs sent inside an app transaction on a provider whose queue is not in
-- PostgreSQL (bullmq): written with the transaction, moved to the queue once it
-- commits, so a job exists exactly when the change it announces does.

CREATE TABLE job_outbox (
    -- The message's redis_message_id.
    id         text PRIMARY KEY,
    queue      text NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Keepers look for rows no after-commit hook moved (a crash, a foreign connection).
CREATE INDEX job_outbox_created ON job_outbox (created_at);
