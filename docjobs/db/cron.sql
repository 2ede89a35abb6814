-- The cron ledger: one row per fired (schedule, slot), in the same block format as
-- queries.sql. Only docjobs.db.cron reads them.

-- cron_claim --
-- A scheduler claims a slot for the message it is about to send: 'fired', or 'paused' (sent by
-- nobody) while the schedule is paused; no row back when another claimed it.
WITH state AS (
    SELECT EXISTS (
        SELECT 1 FROM cron_schedule_state AS s
        WHERE s.schedule = %(schedule)s
          AND (s.paused OR %(slot)s::timestamptz BETWEEN s.paused_at AND s.resumed_at)
    ) AS paused
)
INSERT INTO cron_run (schedule, slot, job_id, fired_by, status, finished_at)
SELECT %(schedule)s, %(slot)s, CASE WHEN paused THEN NULL ELSE %(job_id)s END, %(fired_by)s,
       CASE WHEN paused THEN 'paused' ELSE 'fired' END, CASE WHEN paused THEN now() END
FROM state
ON CONFLICT (schedule, slot) DO NOTHING
RETURNING status;

-- cron_claim_run_now --
-- The board's "run now": a firing of its own at the moment it was asked (never a whole minute,
-- so never a cron slot), whether or not the schedule is paused.
INSERT INTO cron_run (schedule, slot, job_id, fired_by)
VALUES (%(schedule)s, %(slot)s, %(job_id)s, %(fired_by)s)
ON CONFLICT (schedule, slot) DO NOTHING
RETURNING status;

-- cron_decide --
-- A worker received a firing (or a retry of one): record it as running, late, or paused (a
-- cron slot of a paused schedule; %(run_now)s firings are not), if the slot is this message's
-- or nobody's; no row back otherwise. A slot recorded paused stays paused for every message.
WITH decided AS (
    SELECT CASE WHEN NOT %(run_now)s::boolean AND EXISTS (
                    SELECT 1 FROM cron_schedule_state AS s
                    WHERE s.schedule = %(schedule)s
                      AND (s.paused OR %(slot)s::timestamptz BETWEEN s.paused_at AND s.resumed_at)
                )
                THEN 'paused' ELSE %(status)s::text END AS status
)
INSERT INTO cron_run AS run (schedule, slot, job_id, fired_by, status, started_at, finished_at)
SELECT %(schedule)s, %(slot)s, %(job_id)s, %(fired_by)s, status,
       CASE WHEN status <> 'paused' THEN now() END,
       CASE WHEN status IN ('late', 'paused') THEN now() END
FROM decided
ON CONFLICT (schedule, slot) DO UPDATE
SET status = CASE WHEN run.status IN ('fired', 'failed') THEN excluded.status ELSE run.status END,
    started_at = CASE WHEN run.status = 'paused' OR excluded.status = 'paused' THEN run.started_at
                      ELSE coalesce(run.started_at, now()) END,
    finished_at = CASE WHEN run.status IN ('fired', 'failed') THEN excluded.finished_at
                       ELSE run.finished_at END
WHERE run.job_id = excluded.job_id OR run.status = 'paused'
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
      -- A run-now is no slot: it must not hide a missed one from the scheduler's health check.
      AND fired_by IS DISTINCT FROM 'run-now'
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

-- cron_recent --
-- The newest %(limit)s firings of each of the given schedules (run-nows included), newest first.
SELECT last.*
FROM unnest(%(schedules)s::text[]) AS wanted(schedule)
CROSS JOIN LATERAL (
    SELECT schedule, slot, job_id, fired_by, status, created_at, started_at, finished_at, error
    FROM cron_run
    WHERE cron_run.schedule = wanted.schedule
    ORDER BY slot DESC
    LIMIT %(limit)s
) AS last;

-- cron_states --
-- Each schedule's pause state that has one.
SELECT schedule, paused, paused_at, resumed_at, changed_by FROM cron_schedule_state;

-- cron_pause --
-- Pause a schedule (again: from now).
INSERT INTO cron_schedule_state AS s (schedule, paused, paused_at, changed_by)
VALUES (%(schedule)s, true, now(), %(changed_by)s)
ON CONFLICT (schedule) DO UPDATE
SET paused = true,
    paused_at = CASE WHEN s.paused THEN s.paused_at ELSE now() END,
    resumed_at = CASE WHEN s.paused THEN s.resumed_at ELSE NULL END,
    changed_by = excluded.changed_by
RETURNING paused, paused_at, resumed_at;

-- cron_resume --
-- Resume a paused schedule: its slots from paused_at to now stay skipped.
UPDATE cron_schedule_state
SET paused = false,
    resumed_at = CASE WHEN paused THEN now() ELSE resumed_at END,
    changed_by = %(changed_by)s
WHERE schedule = %(schedule)s
RETURNING paused, paused_at, resumed_at;
