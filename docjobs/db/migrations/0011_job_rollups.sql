-- Job history beyond retention (issue 22): finished jobs counted per 5-minute bucket,
-- job type and queue, so the board can chart 24 hours and 7 days after retention has
-- deleted the rows. docjobs/db/rollups.sql fills it; see docjobs/db/rollups.py.

CREATE TABLE background_job_rollup (
    -- The start of a 5-minute bucket of completed_at (UTC); of an hour once compacted.
    bucket         timestamptz NOT NULL,
    actor          text NOT NULL,
    queue          text NOT NULL,
    completed      integer NOT NULL DEFAULT 0,
    failed         integer NOT NULL DEFAULT 0,
    cancelled      integer NOT NULL DEFAULT 0,
    -- Retries the finished jobs took, summed.
    retried        integer NOT NULL DEFAULT 0,
    -- Wait: due (run_at) to the last attempt's start; run: that start to completed_at.
    -- Jobs that never started have neither. Histograms count jobs per bin of
    -- rollups.py's HISTOGRAM_BOUNDS_MS, for percentiles over any span.
    wait_count     integer NOT NULL DEFAULT 0,
    wait_ms_sum    bigint NOT NULL DEFAULT 0,
    wait_ms_max    bigint NOT NULL DEFAULT 0,
    wait_histogram integer[] NOT NULL,
    run_count      integer NOT NULL DEFAULT 0,
    run_ms_sum     bigint NOT NULL DEFAULT 0,
    run_ms_max     bigint NOT NULL DEFAULT 0,
    run_histogram  integer[] NOT NULL,
    PRIMARY KEY (bucket, actor, queue)
);

-- One row: every finished job whose completed_at is before rolled_until is counted in
-- background_job_rollup, and retention deletes no finished job from after it. Buckets
-- before compacted_until are whole hours (a day on, 5 minutes is more than the board needs).
CREATE TABLE background_job_rollup_state (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    rolled_until     timestamptz,
    rolled_at        timestamptz,
    compacted_until  timestamptz
);

INSERT INTO background_job_rollup_state (id) VALUES (true);
