-- Per-job log lines and progress (issue 22), written by actors through docjobs.log_line
-- and docjobs.set_progress. Keyed by job id without a foreign key: on bullmq and inngest
-- a job's history row may be written after its first line. Retention deletes both with
-- the job (job_delete_finished), and sweeps what no job row ever claimed.

-- One row per job that logged or reported progress: the line counter and the progress.
CREATE TABLE background_job_progress (
    job_id     text PRIMARY KEY,
    -- A number from 0 to 100, or a small JSON object; NULL: none reported yet.
    progress   jsonb,
    -- Lines written so far; each line's seq. Only the newest lines are kept (docs/app-code.md).
    lines      integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX background_job_progress_updated ON background_job_progress (updated_at);

CREATE TABLE background_job_log (
    job_id  text NOT NULL,
    seq     integer NOT NULL,
    -- The attempt that wrote it, counted from 1.
    attempt integer NOT NULL,
    at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    line    text NOT NULL,
    PRIMARY KEY (job_id, seq)
);
