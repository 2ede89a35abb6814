-- The admin board: board passwords for users (argon2id hashes), and the audit log
-- of every action taken on the board.

ALTER TABLE "user" ADD COLUMN password_hash text;

CREATE TABLE board_audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    -- Who: a user's email, "token", or "development".
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text,
    detail  jsonb NOT NULL DEFAULT '{}'
);

-- Every attempt that did not end the job well: when it ran, where, and how it
-- failed. The job's own row holds the latest state; this is its past, for the
-- board's attempt timeline. Written on the failure paths only, so a job that
-- succeeds first time costs nothing here.
CREATE TABLE background_job_attempt (
    job_id      text NOT NULL REFERENCES background_job (id) ON DELETE CASCADE ON UPDATE CASCADE,
    attempt     integer NOT NULL,
    started_at  timestamptz,
    finished_at timestamptz NOT NULL DEFAULT now(),
    worker      text,
    -- retried: another attempt follows; failed: the last; lost: the worker died.
    outcome     text NOT NULL CHECK (outcome IN ('retried', 'failed', 'lost')),
    error       text,
    traceback   text,
    PRIMARY KEY (job_id, attempt)
);
