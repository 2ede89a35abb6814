-- Job history rollups (docjobs/db/rollups.py): finished jobs counted per bucket, job type and queue.

-- rollup_hold_state --
-- Hold the rollup's state row for this transaction (no row: another process holds it), with the
-- end of the last bucket closed at %(now)s: buckets end %(grace)s seconds before they are counted.
SELECT rolled_until,
       date_bin(%(step)s * interval '1 second',
                coalesce(%(now)s, now()) - %(grace)s * interval '1 second', 'epoch') AS closed_until
FROM background_job_rollup_state
FOR UPDATE SKIP LOCKED;

-- rollup_create_state --
-- The state row, if a database lost it (the migration inserts it).
INSERT INTO background_job_rollup_state (id) VALUES (true) ON CONFLICT (id) DO NOTHING;

-- rollup_next_finished --
-- The start of the bucket of the first job finished at or after %(since)s (NULL: any time), or NULL.
-- The status list repeats background_job_finished's predicate, so that index answers.
SELECT date_bin(%(step)s * interval '1 second', min(completed_at), 'epoch') AS bucket
FROM background_job
WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
  AND completed_at >= coalesce(%(since)s::timestamptz, '-infinity');

-- rollup_fold --
-- Count the jobs that finished in [%(since)s, %(until)s) into their buckets of %(step)s seconds:
-- outcomes, retries, and wait and run times (sum, max, histogram over the bounds %(bounds)s).
WITH finished AS (
    SELECT date_bin(%(step)s * interval '1 second', completed_at, 'epoch') AS bucket,
           actor, queue, status, retried,
           -- GREATEST skips NULLs: a job that never started gets no times (CASE), not 0.
           CASE WHEN started_at IS NOT NULL
                THEN greatest(floor(extract(epoch FROM started_at - run_at) * 1000), 0)::bigint END AS wait_ms,
           CASE WHEN started_at IS NOT NULL
                THEN greatest(floor(extract(epoch FROM completed_at - started_at) * 1000), 0)::bigint END AS run_ms
    FROM background_job
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND completed_at >= %(since)s AND completed_at < %(until)s
), grouped AS (
    SELECT bucket, actor, queue,
           count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
           count(*) FILTER (WHERE status = 'FAILED') AS failed,
           count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
           coalesce(sum(retried), 0) AS retried,
           count(wait_ms) AS wait_count, coalesce(sum(wait_ms), 0) AS wait_ms_sum,
           coalesce(max(wait_ms), 0) AS wait_ms_max,
           array_agg(width_bucket(wait_ms, %(bounds)s::bigint[])) FILTER (WHERE wait_ms IS NOT NULL) AS wait_bins,
           count(run_ms) AS run_count, coalesce(sum(run_ms), 0) AS run_ms_sum,
           coalesce(max(run_ms), 0) AS run_ms_max,
           array_agg(width_bucket(run_ms, %(bounds)s::bigint[])) FILTER (WHERE run_ms IS NOT NULL) AS run_bins
    FROM finished
    GROUP BY bucket, actor, queue
)
INSERT INTO background_job_rollup AS rollup
    (bucket, actor, queue, completed, failed, cancelled, retried,
     wait_count, wait_ms_sum, wait_ms_max, wait_histogram, run_count, run_ms_sum, run_ms_max, run_histogram)
SELECT bucket, actor, queue, completed, failed, cancelled, retried,
       wait_count, wait_ms_sum, wait_ms_max,
       ARRAY(SELECT count(*) FILTER (WHERE bin = slot) FROM generate_series(0, %(bins)s - 1) AS slot
             LEFT JOIN unnest(wait_bins) AS bin ON true GROUP BY slot ORDER BY slot),
       run_count, run_ms_sum, run_ms_max,
       ARRAY(SELECT count(*) FILTER (WHERE bin = slot) FROM generate_series(0, %(bins)s - 1) AS slot
             LEFT JOIN unnest(run_bins) AS bin ON true GROUP BY slot ORDER BY slot)
FROM grouped
-- Ranges never overlap (the state row says where the last one ended); adding keeps a bucket
-- right even if one were folded in two parts.
ON CONFLICT (bucket, actor, queue) DO UPDATE SET
    completed = rollup.completed + excluded.completed,
    failed = rollup.failed + excluded.failed,
    cancelled = rollup.cancelled + excluded.cancelled,
    retried = rollup.retried + excluded.retried,
    wait_count = rollup.wait_count + excluded.wait_count,
    wait_ms_sum = rollup.wait_ms_sum + excluded.wait_ms_sum,
    wait_ms_max = greatest(rollup.wait_ms_max, excluded.wait_ms_max),
    wait_histogram = ARRAY(SELECT a + b FROM unnest(rollup.wait_histogram, excluded.wait_histogram)
                           WITH ORDINALITY AS pair(a, b, i) ORDER BY i),
    run_count = rollup.run_count + excluded.run_count,
    run_ms_sum = rollup.run_ms_sum + excluded.run_ms_sum,
    run_ms_max = greatest(rollup.run_ms_max, excluded.run_ms_max),
    run_histogram = ARRAY(SELECT a + b FROM unnest(rollup.run_histogram, excluded.run_histogram)
                          WITH ORDINALITY AS pair(a, b, i) ORDER BY i);

-- rollup_advance --
-- Record that every finished job before %(until)s is counted.
UPDATE background_job_rollup_state SET rolled_until = %(until)s, rolled_at = coalesce(%(now)s, now());

-- rollup_state --
-- Where the rollups end, and when they were last advanced.
SELECT rolled_until, rolled_at FROM background_job_rollup_state;

-- rollup_delete_old --
-- Delete buckets older than %(days)s days (the row count tells how many).
DELETE FROM background_job_rollup
WHERE bucket < coalesce(%(now)s, now()) - %(days)s * interval '1 day';

-- rollup_by_actor --
-- Per job type over the buckets of [%(since)s, %(until)s): outcomes, retries, wait and run times,
-- the histograms added up bin by bin. Reads the primary key's range of buckets only.
WITH span AS (
    SELECT * FROM background_job_rollup WHERE bucket >= %(since)s AND bucket < %(until)s
), totals AS (
    SELECT actor, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
           sum(cancelled)::bigint AS cancelled, sum(retried)::bigint AS retried,
           sum(wait_count)::bigint AS wait_count, sum(wait_ms_sum)::bigint AS wait_ms_sum,
           max(wait_ms_max) AS wait_ms_max,
           sum(run_count)::bigint AS run_count, sum(run_ms_sum)::bigint AS run_ms_sum,
           max(run_ms_max) AS run_ms_max
    FROM span GROUP BY actor
), wait_bins AS (
    SELECT actor, array_agg(n ORDER BY i) AS wait_histogram
    FROM (SELECT actor, i, sum(n)::bigint AS n
          FROM span, unnest(wait_histogram) WITH ORDINALITY AS h(n, i) GROUP BY actor, i) AS bins
    GROUP BY actor
), run_bins AS (
    SELECT actor, array_agg(n ORDER BY i) AS run_histogram
    FROM (SELECT actor, i, sum(n)::bigint AS n
          FROM span, unnest(run_histogram) WITH ORDINALITY AS h(n, i) GROUP BY actor, i) AS bins
    GROUP BY actor
)
SELECT totals.*, wait_bins.wait_histogram, run_bins.run_histogram
FROM totals JOIN wait_bins USING (actor) JOIN run_bins USING (actor)
ORDER BY actor;

-- rollup_series --
-- Per step of %(step)s seconds from %(since)s to %(until)s: jobs completed and failed, and the wait
-- (sum and count). Steps start at %(since)s, so the caller's buckets match.
SELECT date_bin(%(step)s * interval '1 second', bucket, %(since)s) AS at,
       sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
       sum(wait_ms_sum)::bigint AS wait_ms_sum, sum(wait_count)::bigint AS wait_count
FROM background_job_rollup
WHERE bucket >= %(since)s AND bucket < %(until)s
GROUP BY 1
ORDER BY 1;
