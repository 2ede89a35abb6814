-- The admin board's reads and the row updates its actions make, in the same block
-- format as queries.sql. Only docjobs.db.board runs them.

-- board_queue_counts --
-- Every queue with its jobs per state and the age of its oldest job waiting to run.
SELECT job.queue,
       count(*) FILTER (WHERE status = 'PENDING' AND run_at <= now()) AS queued,
       count(*) FILTER (WHERE status = 'PENDING' AND run_at > now()) AS scheduled,
       count(*) FILTER (WHERE status = 'PROCESSING') AS active,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       count(*) FILTER (WHERE status = 'CANCELLED') AS cancelled,
       extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'PENDING' AND run_at <= now()))
           AS oldest_waiting_seconds,
       coalesce(bool_or(state.paused), false) AS paused
FROM background_job AS job
LEFT JOIN queue_state AS state ON state.queue = job.queue
GROUP BY job.queue
ORDER BY job.queue;

-- board_job_page --
-- One page of jobs, newest first (ids are time-ordered), after the cursor %(before)s.
-- A NULL filter matches everything; %(due)s splits PENDING into queued (true) and scheduled (false).
SELECT id, queue, actor, name, status, attempts, retried, max_retries, run_at, submitted_at,
       started_at, completed_at, last_error
FROM background_job
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(due)s::boolean IS NULL OR (run_at <= now()) = %(due)s::boolean)
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
  AND (%(search)s::text IS NULL OR payload::text ILIKE %(search)s::text)
  AND (%(since)s::timestamptz IS NULL OR submitted_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR submitted_at < %(until)s::timestamptz)
  AND (%(before)s::text IS NULL OR id < %(before)s::text)
ORDER BY id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- board_job_count --
-- How many jobs match the jobs list's filter, counting at most %(cap)s (a bounded scan:
-- the list says "more than" beyond it). Same filter as board_job_page.
SELECT count(*) AS count FROM (
    SELECT 1 FROM background_job
    WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
      AND (%(due)s::boolean IS NULL OR (run_at <= now()) = %(due)s::boolean)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
      AND (%(search)s::text IS NULL OR payload::text ILIKE %(search)s::text)
      AND (%(since)s::timestamptz IS NULL OR submitted_at >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL OR submitted_at < %(until)s::timestamptz)
    LIMIT %(cap)s
) AS capped;

-- board_job --
-- Everything about one job, with the host and pid of the worker holding it (while its row lasts).
SELECT job.*, holder.hostname AS worker_hostname, holder.pid AS worker_pid
FROM background_job AS job LEFT JOIN worker AS holder ON holder.id = job.locked_by
WHERE job.id = %(id)s;

-- board_job_tasks --
-- A job's run_task steps, in the order they first ran.
SELECT name, status, result, retried, created_at, completed_at, last_error
FROM background_job_task WHERE job_id = %(job_id)s ORDER BY created_at, name;

-- board_job_attempts --
-- A job's attempts that did not end it well, oldest first.
-- The worker's host and pid come from its row while it lasts (a stopped worker's row goes).
SELECT attempt.attempt, attempt.started_at, attempt.finished_at, attempt.worker, attempt.outcome,
       attempt.error, attempt.traceback, ran_on.hostname AS worker_hostname, ran_on.pid AS worker_pid
FROM background_job_attempt AS attempt LEFT JOIN worker AS ran_on ON ran_on.id = attempt.worker
WHERE attempt.job_id = %(job_id)s ORDER BY attempt.attempt;

-- board_workers --
-- Worker processes with their heartbeat age and the jobs they hold.
SELECT worker.id, worker.hostname, worker.pid, worker.queues, worker.concurrency, worker.started_at,
       extract(epoch FROM now() - worker.heartbeat_at) AS heartbeat_age_seconds,
       (SELECT count(*) FROM background_job
        WHERE status = 'PROCESSING' AND locked_by = worker.id) AS in_flight
FROM worker ORDER BY worker.started_at;

-- board_cron_last_runs --
-- Each schedule's latest fired slot and its outcome.
SELECT DISTINCT ON (schedule) schedule, slot, status, job_id, finished_at, error
FROM cron_run ORDER BY schedule, slot DESC;

-- board_retry --
-- Run a finished job again from its first attempt (the attempt counter keeps fencing old claims).
-- last_retried_at says the board put it back: its run_at is the board's, not a delay its sender chose.
UPDATE background_job
SET status = 'PENDING', run_at = now(), retried = 0, payload = coalesce(%(payload)s::jsonb, payload),
    completed_at = NULL, started_at = NULL, locked_by = NULL, lease_until = NULL, updated_at = now(),
    last_retried_at = now()
WHERE id = %(id)s AND status IN ('FAILED', 'CANCELLED', 'COMPLETED')
RETURNING id, queue, actor;

-- board_cancel --
-- Cancel a job that has not started.
UPDATE background_job
SET status = 'CANCELLED', completed_at = now(), updated_at = now(), last_error = 'cancelled on the board'
WHERE id = %(id)s AND status = 'PENDING'
RETURNING id, queue;

-- board_promote --
-- Run a delayed job now.
UPDATE background_job SET run_at = now(), updated_at = now()
WHERE id = %(id)s AND status = 'PENDING' AND run_at > now()
RETURNING id, queue, actor;

-- board_delete --
-- Delete a job that is not running (its tasks go with it).
DELETE FROM background_job WHERE id = %(id)s AND status <> 'PROCESSING'
RETURNING id, queue;

-- board_history_set_status --
-- On providers whose queue is elsewhere, what the board did to a job's history row.
UPDATE background_job
SET status = %(status)s, completed_at = CASE WHEN %(status)s = 'PENDING' THEN NULL ELSE now() END,
    updated_at = now(), last_error = coalesce(%(error)s, last_error)
WHERE id = %(id)s
RETURNING id, queue;

-- board_audit_add --
-- Record an action taken on the board.
INSERT INTO board_audit (actor, action, target, detail)
VALUES (%(actor)s, %(action)s, %(target)s, %(detail)s::jsonb)
RETURNING id, at;

-- board_audit_payload_edit --
-- The latest board retry that edited this job's payload: of this job in place, or one that sent
-- it as a new job (retried_as). Who, when, and the payload the failed attempts ran with.
SELECT at, actor, detail -> 'payload_before' AS payload_before, target
FROM board_audit
WHERE action = 'retry' AND detail @> '{"edited": true}'
  AND ((target = %(id)s AND NOT detail ? 'retried_as') OR detail ->> 'retried_as' = %(id)s)
ORDER BY id DESC LIMIT 1;

-- board_audit_page --
-- The newest audit entries.
SELECT id, at, actor, action, target, detail FROM board_audit ORDER BY id DESC LIMIT %(limit)s;

-- board_admin_by_email --
-- A user who may sign in to the board, with their password hash.
SELECT id, email, name, roles, disabled, password_hash FROM "user" WHERE lower(email) = lower(%(email)s);

-- board_set_password --
-- Set a user's board password (creating the user when absent) and make them an ADMIN.
-- Their board sessions end with the old password (board_session_user would refuse them
-- anyway; deleting them says so at once).
WITH saved AS (
    INSERT INTO "user" (email, name, roles, password_hash)
    VALUES (lower(%(email)s), %(name)s, ARRAY['ADMIN', 'USER'], %(password_hash)s)
    ON CONFLICT (email) DO UPDATE
    SET password_hash = excluded.password_hash,
        roles = (SELECT array_agg(DISTINCT role ORDER BY role)
                 FROM unnest("user".roles || ARRAY['ADMIN']) AS role)
    RETURNING id, email, roles
), ended AS (
    DELETE FROM board_session WHERE user_id IN (SELECT id FROM saved) RETURNING 1
)
SELECT id, email, roles, (SELECT count(*) FROM ended) AS sessions_ended FROM saved;

-- board_session_start --
-- Start a session for a user whose password %(password_hash)s was just verified: only
-- while it is still their password and they are an enabled ADMIN (no row otherwise).
-- Expired sessions go, and the user's oldest beyond %(keep)s, so the table stays small.
WITH pruned AS (
    DELETE FROM board_session
    WHERE expires_at <= now()
       OR (user_id = %(user_id)s AND token_hash NOT IN (
               SELECT token_hash FROM board_session WHERE user_id = %(user_id)s
               ORDER BY created_at DESC LIMIT %(keep)s - 1))
)
INSERT INTO board_session (token_hash, user_id, password_fingerprint, expires_at)
SELECT %(token_hash)s, id, sha256(convert_to(password_hash, 'UTF8')),
       now() + %(lifetime)s * interval '1 second'
FROM "user"
WHERE id = %(user_id)s AND password_hash = %(password_hash)s
  AND NOT disabled AND 'ADMIN' = ANY(roles)
RETURNING user_id;

-- board_session_user --
-- The user of a live session: not expired, and its user still an enabled ADMIN with the
-- password it signed in with. A session found dead is deleted, so it stays dead (an ADMIN
-- role given back later does not revive it).
WITH found AS (
    SELECT session.token_hash, account.id, account.email,
           session.expires_at > now()
           AND NOT account.disabled
           AND 'ADMIN' = ANY(account.roles)
           AND sha256(convert_to(account.password_hash, 'UTF8')) IS NOT DISTINCT FROM
               session.password_fingerprint
           AS live
    FROM board_session AS session JOIN "user" AS account ON account.id = session.user_id
    WHERE session.token_hash = %(token_hash)s
), ended AS (
    DELETE FROM board_session WHERE token_hash IN (SELECT token_hash FROM found WHERE NOT live)
)
SELECT id, email FROM found WHERE live;

-- board_session_end --
-- Sign out: the session ends for every copy of its cookie.
DELETE FROM board_session WHERE token_hash = %(token_hash)s;

-- board_count_attempt --
-- Count a sign-in attempt for a key in the current window; returns the count so far.
INSERT INTO rate_limit (key, action, bucket, count)
VALUES (%(key)s, 'board-sign-in', date_bin(%(window)s * interval '1 second', now(), 'epoch'), 1)
ON CONFLICT (key, action, bucket) DO UPDATE SET count = rate_limit.count + 1
RETURNING count;

-- board_bulk_retry --
-- Put up to %(limit)s failed or cancelled jobs matching the filter (or among %(ids)s) back to
-- PENDING. Completed jobs are not retried: there is nothing to retry ("run again" sends a copy).
WITH chosen AS (
    SELECT id FROM background_job
    WHERE status IN ('FAILED', 'CANCELLED')
      AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))
      AND (%(status)s::text IS NULL OR status = %(status)s::text)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
      AND (%(search)s::text IS NULL OR payload::text ILIKE %(search)s::text)
      AND (%(since)s::timestamptz IS NULL OR submitted_at >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL OR submitted_at < %(until)s::timestamptz)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE background_job AS job
SET status = 'PENDING', run_at = now(), retried = 0, completed_at = NULL, started_at = NULL,
    locked_by = NULL, lease_until = NULL, updated_at = now(), last_retried_at = now()
FROM chosen WHERE job.id = chosen.id
RETURNING job.id, job.queue, job.actor;

-- board_bulk_delete --
-- Delete up to %(limit)s jobs that are not running and match the filter (or are among %(ids)s).
WITH chosen AS (
    SELECT id FROM background_job
    WHERE status <> 'PROCESSING'
      AND (%(ids)s::text[] IS NULL OR id = ANY(%(ids)s::text[]))
      AND (%(status)s::text IS NULL OR status = %(status)s::text)
      AND (%(due)s::boolean IS NULL OR (run_at <= now()) = %(due)s::boolean)
      AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
      AND (%(actor)s::text IS NULL OR actor = %(actor)s::text)
      AND (%(search)s::text IS NULL OR payload::text ILIKE %(search)s::text)
      AND (%(since)s::timestamptz IS NULL OR submitted_at >= %(since)s::timestamptz)
      AND (%(until)s::timestamptz IS NULL OR submitted_at < %(until)s::timestamptz)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
DELETE FROM background_job AS job USING chosen WHERE job.id = chosen.id
RETURNING job.id, job.queue;

-- board_clean --
-- Delete up to %(limit)s jobs of a finished status that finished more than %(days)s days ago.
WITH doomed AS (
    SELECT id FROM background_job
    WHERE status = %(status)s AND completed_at < now() - %(days)s * interval '1 day'
    LIMIT %(limit)s
)
DELETE FROM background_job WHERE id IN (SELECT id FROM doomed);

-- board_set_paused --
-- Pause or resume a queue: consumers claim nothing from a paused queue.
INSERT INTO queue_state (queue, paused, updated_at) VALUES (%(queue)s, %(paused)s, now())
ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused, updated_at = now()
RETURNING queue, paused;

-- board_activity --
-- Jobs finished per step of %(step)s seconds from %(since)s to %(until)s (the overview's chart;
-- board-overview): completions, failures, run-time percentiles per step; the row whose ``at``
-- is NULL covers the whole span. Steps start at %(since)s, so the caller's buckets match.
-- The status list repeats background_job_finished's predicate so that partial index reads
-- only the span's rows.
SELECT date_bin(%(step)s * interval '1 second', completed_at, %(since)s) AS at,
       count(*) FILTER (WHERE status = 'COMPLETED') AS completed,
       count(*) FILTER (WHERE status = 'FAILED') AS failed,
       percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (
           ORDER BY extract(epoch FROM completed_at - coalesce(started_at, completed_at))) AS seconds
FROM background_job
WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED') AND status <> 'CANCELLED'
  AND completed_at >= %(since)s AND completed_at < %(until)s
GROUP BY GROUPING SETS ((1), ())
ORDER BY 1 NULLS FIRST;

-- board_clear_attempts --
-- Forget a key's sign-in attempts (after a successful sign-in).
DELETE FROM rate_limit WHERE key = %(key)s AND action = 'board-sign-in';

-- board_refund_attempt --
-- Take back one sign-in attempt of a key in the current window (a sign-in that succeeded).
UPDATE rate_limit SET count = greatest(count - 1, 0)
WHERE key = %(key)s AND action = 'board-sign-in'
  AND bucket = date_bin(%(window)s * interval '1 second', now(), 'epoch');

-- board_queue_waits --
-- Per queue, how long its jobs that ended in the last hour waited to start once due (issue 22):
-- median and 95th percentile. Finished jobs only, so the index on completed_at bounds the scan.
SELECT queue,
       count(*) AS started_last_hour,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY wait) AS wait_p50_seconds,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY wait) AS wait_p95_seconds
FROM (
    SELECT queue, greatest(extract(epoch FROM started_at - run_at), 0) AS wait
    FROM background_job
    WHERE completed_at >= now() - interval '1 hour'
      AND started_at >= now() - interval '1 hour'
) AS started
GROUP BY queue
ORDER BY queue;
