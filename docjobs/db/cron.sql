-- The cron ledger: one row per fired (schedule, slot), in the same block format as
-- queries.sql. Only docjobs.db.cron reads them.

-- cron_claim --
-- A scheduler claims a slot for the message it is about to send; no row back when another did.
INSERT INTO cron_run (schedule, slot, job_id, fired_by)
VALUES (%(schedule)s, %(slot)s, %(job_id)s, %(fired_by)s)
ON CONFLICT (schedule, slot) DO NOTHING
RETURNING job_id;

-- cron_decide --
-- A worker received a firing (or a retry of one): record it as running, or late, if the slot is
-- this message's or nobody's; no row back otherwise.
INSERT INTO cron_run AS run (schedule, slot, job_id, fired_by, status, started_at, finished_at)
VALUES (%(schedule)s, %(slot)s, %(job_id)s, %(fired_by)s, %(status)s, now(),
        CASE WHEN %(status)s = 'late' THEN now() END)
ON CONFLICT (schedule, slot) DO UPDATE
SET status = CASE WHEN run.status IN ('fired', 'failed') THEN excluded.status ELSE run.status END,
    started_at = coalesce(run.started_at, now()),
    finished_at = CASE WHEN run.status IN ('fired', 'failed') THEN excluded.finished_at
                       ELSE run.finished_at END
WHERE run.job_id = excluded.job_id
RETURNING run.status;

-- cron_finish --
-- Record how the running firing of a slot ended.
UPDATE cron_run
SET status = %(status)s, finished_at = now(), error = %(error)s
WHERE schedule = %(schedule)s AND slot = %(slot)s AND job_id = %(job_id)s AND status = 'running';

-- cron_latest --
-- The newest firing of each of the given schedules.
SELECT last.*
FROM unnest(%(schedules)s::text[]) AS wanted(schedule)
CROSS JOIN LATERAL (
    SELECT schedule, slot, job_id, fired_by, status, created_at, started_at, finished_at, error
    FROM cron_run
    WHERE cron_run.schedule = wanted.schedule
    ORDER BY slot DESC
    LIMIT 1
) AS last;

-- cron_history --
-- A schedule's firings, newest first.
SELECT schedule, slot, job_id, fired_by, status, created_at, started_at, finished_at, error
FROM cron_run
WHERE schedule = %(schedule)s
ORDER BY slot DESC
LIMIT %(limit)s;

-- cron_delete_old --
-- Delete up to %(limit)s firings older than %(days)s days (the row count tells how many).
DELETE FROM cron_run
WHERE ctid IN (
    SELECT ctid FROM cron_run
    WHERE created_at < now() - %(days)s * interval '1 day'
    LIMIT %(limit)s
);
