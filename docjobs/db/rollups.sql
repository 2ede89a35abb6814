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
-- outcomes, retries, and wait and run times (sum, max, and a histogram over the bounds %(bounds)s,
-- whose 12 bins are written out: one pass, no per-row subquery).
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
), binned AS (
    SELECT *, width_bucket(wait_ms, %(bounds)s::bigint[]) AS wait_bin,
           width_bucket(run_ms, %(bounds)s::bigint[]) AS run_bin
    FROM finished
)
INSERT INTO background_job_rollup AS rollup
    (bucket, actor, queue, completed, failed, cancelled, retried,
     wait_count, wait_ms_sum, wait_ms_max, wait_histogram, run_count, run_ms_sum, run_ms_max, run_histogram)
SELECT bucket, actor, queue,
       count(*) FILTER (WHERE status = 'COMPLETED'),
       count(*) FILTER (WHERE status = 'FAILED'),
       count(*) FILTER (WHERE status = 'CANCELLED'),
       coalesce(sum(retried), 0),
       count(wait_ms), coalesce(sum(wait_ms), 0), coalesce(max(wait_ms), 0),
       ARRAY[count(*) FILTER (WHERE wait_bin = 0), count(*) FILTER (WHERE wait_bin = 1), count(*) FILTER (WHERE wait_bin = 2),
                 count(*) FILTER (WHERE wait_bin = 3), count(*) FILTER (WHERE wait_bin = 4), count(*) FILTER (WHERE wait_bin = 5),
                 count(*) FILTER (WHERE wait_bin = 6), count(*) FILTER (WHERE wait_bin = 7), count(*) FILTER (WHERE wait_bin = 8),
                 count(*) FILTER (WHERE wait_bin = 9), count(*) FILTER (WHERE wait_bin = 10), count(*) FILTER (WHERE wait_bin = 11)]::integer[],
       count(run_ms), coalesce(sum(run_ms), 0), coalesce(max(run_ms), 0),
       ARRAY[count(*) FILTER (WHERE run_bin = 0), count(*) FILTER (WHERE run_bin = 1), count(*) FILTER (WHERE run_bin = 2),
                 count(*) FILTER (WHERE run_bin = 3), count(*) FILTER (WHERE run_bin = 4), count(*) FILTER (WHERE run_bin = 5),
                 count(*) FILTER (WHERE run_bin = 6), count(*) FILTER (WHERE run_bin = 7), count(*) FILTER (WHERE run_bin = 8),
                 count(*) FILTER (WHERE run_bin = 9), count(*) FILTER (WHERE run_bin = 10), count(*) FILTER (WHERE run_bin = 11)]::integer[]
FROM binned
GROUP BY bucket, actor, queue
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

-- rollup_compact --
-- Merge the 5-minute buckets from %(since)s (NULL: the first) to %(until)s into one row per hour,
-- under the hour's first bucket, adding up as rollup_fold does. Whole hours are left as they are.
WITH merged AS (
    DELETE FROM background_job_rollup
    WHERE bucket >= coalesce(%(since)s::timestamptz, '-infinity') AND bucket < %(until)s
      AND bucket <> date_bin(interval '1 hour', bucket, 'epoch')
    RETURNING *
)
INSERT INTO background_job_rollup AS rollup
    (bucket, actor, queue, completed, failed, cancelled, retried,
     wait_count, wait_ms_sum, wait_ms_max, wait_histogram, run_count, run_ms_sum, run_ms_max, run_histogram)
SELECT date_bin(interval '1 hour', bucket, 'epoch'), actor, queue,
       sum(completed), sum(failed), sum(cancelled), sum(retried),
       sum(wait_count), sum(wait_ms_sum), max(wait_ms_max),
       ARRAY[sum(wait_histogram[1]), sum(wait_histogram[2]), sum(wait_histogram[3]), sum(wait_histogram[4]), sum(wait_histogram[5]), sum(wait_histogram[6]),
             sum(wait_histogram[7]), sum(wait_histogram[8]), sum(wait_histogram[9]), sum(wait_histogram[10]), sum(wait_histogram[11]), sum(wait_histogram[12])]::integer[],
       sum(run_count), sum(run_ms_sum), max(run_ms_max),
       ARRAY[sum(run_histogram[1]), sum(run_histogram[2]), sum(run_histogram[3]), sum(run_histogram[4]), sum(run_histogram[5]), sum(run_histogram[6]),
             sum(run_histogram[7]), sum(run_histogram[8]), sum(run_histogram[9]), sum(run_histogram[10]), sum(run_histogram[11]), sum(run_histogram[12])]::integer[]
FROM merged
GROUP BY 1, actor, queue
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

-- rollup_hold_compaction --
-- Hold the state row (no row: a rollup round holds it), with where compaction ended and where it
-- may go: whole hours that ended %(age)s seconds before %(now)s, and that the rollups have counted.
SELECT compacted_until,
       date_bin(interval '1 hour',
                least(coalesce(%(now)s, now()) - %(age)s * interval '1 second', rolled_until), 'epoch') AS until
FROM background_job_rollup_state
WHERE rolled_until IS NOT NULL
FOR UPDATE SKIP LOCKED;

-- rollup_compacted --
-- Record that buckets before %(until)s are whole hours.
UPDATE background_job_rollup_state SET compacted_until = %(until)s;

-- rollup_state --
-- Where the rollups end, and when they were last advanced.
SELECT rolled_until, rolled_at, compacted_until FROM background_job_rollup_state;

-- rollup_delete_old --
-- Delete buckets older than %(days)s days (the row count tells how many).
DELETE FROM background_job_rollup
WHERE bucket < coalesce(%(now)s, now()) - %(days)s * interval '1 day';

-- rollup_by_actor --
-- Per job type over the buckets of [%(since)s, %(until)s): outcomes, retries, wait and run times,
-- the histograms added up bin by bin (12 bins, written out: one pass). Reads the primary key's
-- range of buckets only.
SELECT actor, sum(completed)::bigint AS completed, sum(failed)::bigint AS failed,
       sum(cancelled)::bigint AS cancelled, sum(retried)::bigint AS retried,
       sum(wait_count)::bigint AS wait_count, sum(wait_ms_sum)::bigint AS wait_ms_sum,
       max(wait_ms_max) AS wait_ms_max,
       ARRAY[sum(wait_histogram[1]), sum(wait_histogram[2]), sum(wait_histogram[3]), sum(wait_histogram[4]), sum(wait_histogram[5]), sum(wait_histogram[6]),
                 sum(wait_histogram[7]), sum(wait_histogram[8]), sum(wait_histogram[9]), sum(wait_histogram[10]), sum(wait_histogram[11]), sum(wait_histogram[12])]::bigint[] AS wait_histogram,
       sum(run_count)::bigint AS run_count, sum(run_ms_sum)::bigint AS run_ms_sum,
       max(run_ms_max) AS run_ms_max,
       ARRAY[sum(run_histogram[1]), sum(run_histogram[2]), sum(run_histogram[3]), sum(run_histogram[4]), sum(run_histogram[5]), sum(run_histogram[6]),
                 sum(run_histogram[7]), sum(run_histogram[8]), sum(run_histogram[9]), sum(run_histogram[10]), sum(run_histogram[11]), sum(run_histogram[12])]::bigint[] AS run_histogram
FROM background_job_rollup
WHERE bucket >= %(since)s AND bucket < %(until)s
GROUP BY actor
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
