-- Every query docjobs runs, one block each: a "-- name --" line, a description
-- line, then the query with %(param)s parameters. Names are entity first, so
-- related queries sort together. Only docjobs.db.store reads them.
--
-- The statements on held jobs (acks, retries, failures, requeues, heartbeats) name them by id and
-- test their status with IS NOT DISTINCT FROM: the same test (status is NOT NULL), but no partial
-- index on status matches it. Between two vacuums the processing index keeps an entry for every job
-- finished since, and a plan that scanned it instead of looking the jobs up by id grew slower by
-- the minute under load (issue 21, tests/integration/test_statements_between_vacuums.py). They are
-- planned at each run (docjobs.db.claims, docjobs.db.workers): a plan kept from when the table was
-- small scans all of it once it is not.

-- job_insert --
-- Insert one job alone (its own transaction); fails with a unique violation when its id exists (the
-- fast path). It sets its own durability for its transaction ('default': the server's setting), so
-- the pooled session's synchronous_commit never has to change for it.
INSERT INTO background_job
    (id, queue, actor, name, version, payload, args, options, max_retries, priority, message_ts_ms, run_at)
SELECT %(id)s::text, %(queue)s::text, %(actor)s::text, %(name)s::text, %(version)s::text,
       %(payload)s::jsonb, %(args)s::jsonb, %(options)s::jsonb, %(max_retries)s::int, %(priority)s::int,
       %(message_ts_ms)s::bigint, now() + %(delay_ms)s::bigint * interval '1 millisecond'
FROM (SELECT set_config('synchronous_commit', nullif(%(synchronous_commit)s::text, 'default'), true))
    AS durability;

-- job_insert_ringing --
-- job_insert that also rings the queue's doorbell: the NOTIFY is delivered at this insert's commit
-- (and dropped with it), so a send due a ring needs no second transaction (issue 21).
INSERT INTO background_job
    (id, queue, actor, name, version, payload, args, options, max_retries, priority, message_ts_ms, run_at)
SELECT %(id)s::text, %(queue)s::text, %(actor)s::text, %(name)s::text, %(version)s::text,
       %(payload)s::jsonb, %(args)s::jsonb, %(options)s::jsonb, %(max_retries)s::int, %(priority)s::int,
       %(message_ts_ms)s::bigint, now() + %(delay_ms)s::bigint * interval '1 millisecond'
FROM (SELECT set_config('synchronous_commit', nullif(%(synchronous_commit)s::text, 'default'), true),
             pg_notify('docjobs_jobs', %(queue)s::text))
    AS durability;

-- job_insert_durability --
-- Set a standalone COPY's durability for its own transaction ('default': the server's).
SELECT set_config('synchronous_commit', nullif(%(synchronous_commit)s::text, 'default'), true);

-- job_insert_unless_exists --
-- Insert one job unless a job with that id exists; returns the id when inserted.
INSERT INTO background_job
    (id, queue, actor, name, version, payload, args, options, max_retries, priority, message_ts_ms, run_at)
VALUES
    (%(id)s, %(queue)s, %(actor)s, %(name)s, %(version)s, %(payload)s::jsonb, %(args)s::jsonb,
     %(options)s::jsonb, %(max_retries)s, %(priority)s, %(message_ts_ms)s,
     now() + %(delay_ms)s * interval '1 millisecond')
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- job_insert_many --
-- Insert many jobs in one statement, skipping ids that exist; returns the inserted ids. The jobs come as
-- one JSON array of arrays (NewJob's fields in order; psycopg adapted twelve arrays element by element,
-- in Python). A standalone batch sets its own durability ('default': the server's); inside the caller's
-- transaction (NULL) it keeps the transaction's.
INSERT INTO background_job
    (id, queue, actor, name, version, payload, args, options, max_retries, priority, message_ts_ms, run_at)
SELECT job->>0, job->>1, job->>2, job->>3, job->>4, (job->>5)::jsonb, (job->>6)::jsonb, (job->>7)::jsonb,
       (job->>8)::int, (job->>9)::int, (job->>10)::bigint, now() + (job->>11)::bigint * interval '1 millisecond'
FROM jsonb_array_elements(%(jobs)s::jsonb) AS batch(job),
     (SELECT CASE WHEN %(synchronous_commit)s::text IS NOT NULL
                  THEN set_config('synchronous_commit', nullif(%(synchronous_commit)s::text, 'default'), true)
             END) AS durability
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- job_copy_in --
-- Bulk-load new jobs (fresh ids, no delay: run_at defaults to now).
COPY background_job
    (id, queue, actor, name, version, payload, args, options, max_retries, priority, message_ts_ms)
FROM STDIN;

-- job_complete_and_claim --
-- Mark acked jobs COMPLETED (only the attempt that was claimed) and claim up to %(limit)s due jobs;
-- a completed job's times are when its actor ran (ended ended_ago_ms before now, after ran_ms; no
-- ran_ms: from its claim), a claimed job's started_at its claim time until then; message_ts_ms is the
-- message's own timestamp (submitted_at for rows from before migration 0007). The JSON columns come
-- back as text, for docjobs.db.claims to decode (most are the empty '[]' and '{}'). The acks are
-- written before the claim locks anything (see next).
WITH completed AS (
    UPDATE background_job AS job
    SET status = 'COMPLETED', completed_at = now() - done.ended_ago_ms * interval '1 millisecond',
        started_at = greatest(job.started_at,
                              now() - (done.ended_ago_ms + done.ran_ms) * interval '1 millisecond'),
        updated_at = now(), locked_by = NULL, lease_until = NULL
    -- One JSON document per batch: psycopg adapts four arrays element by element, in Python.
    FROM json_to_recordset(%(done)s::json) AS done(id text, attempts int, ended_ago_ms float8, ran_ms float8)
    WHERE job.id = done.id AND job.attempts = done.attempts AND job.status IS NOT DISTINCT FROM 'PROCESSING'
    RETURNING job.id
), next AS (
    SELECT id FROM background_job
    WHERE queue = %(queue)s AND status = 'PENDING' AND run_at <= now()
      AND NOT EXISTS (SELECT 1 FROM queue_state WHERE queue_state.queue = %(queue)s AND paused)
      -- Reading completed here writes the acks first (left alone, a data-modifying CTE runs last).
      -- An ack may wait for a lock another process's claim keeps on a job it skipped; a claim
      -- never waits. Claiming first and then waiting deadlocked two processes (issue 21).
      AND (SELECT count(*) FROM completed) >= 0
    ORDER BY priority, run_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE background_job AS job
SET status = 'PROCESSING', attempts = job.attempts + 1, locked_by = %(worker)s, started_at = now(),
    lease_until = now() + %(lease_seconds)s * interval '1 second', updated_at = now(),
    last_retried_at = CASE WHEN job.retried > 0 THEN now() ELSE job.last_retried_at END
FROM next
WHERE job.id = next.id
RETURNING job.id, job.actor, job.args::text AS args, job.payload::text AS payload,
          job.options::text AS options, job.retried, job.attempts, job.priority, job.seq,
          coalesce(job.message_ts_ms, (extract(epoch FROM job.submitted_at) * 1000)::bigint) AS message_ts_ms;

-- job_retry --
-- Put a failed attempt back to PENDING after a backoff, if that attempt still holds the job;
-- the attempt is kept in background_job_attempt with when it ran (ended ended_ago_ms before now,
-- after ran_ms; no ran_ms: from its claim).
WITH held AS (
    SELECT id, locked_by FROM background_job WHERE id = %(id)s
), moved AS (
    UPDATE background_job AS job
    SET status = 'PENDING', run_at = now() + %(delay_ms)s * interval '1 millisecond',
        retried = %(retried)s, options = %(options)s::jsonb, last_error = %(error)s,
        last_traceback = %(traceback)s, locked_by = NULL, lease_until = NULL, updated_at = now(),
        started_at = greatest(job.started_at,
                              now() - (%(ended_ago_ms)s + %(ran_ms)s::float8) * interval '1 millisecond')
    FROM held
    WHERE job.id = held.id AND job.attempts = %(attempts)s AND job.status IS NOT DISTINCT FROM 'PROCESSING'
    RETURNING job.id, job.attempts, job.started_at, held.locked_by
), kept AS (
    INSERT INTO background_job_attempt (job_id, attempt, started_at, finished_at, worker, outcome, error,
                                        traceback)
    SELECT id, attempts, started_at, now() - %(ended_ago_ms)s * interval '1 millisecond', locked_by,
           'retried', %(error)s, %(traceback)s
    FROM moved
    ON CONFLICT (job_id, attempt) DO NOTHING
)
SELECT id FROM moved;

-- job_fail --
-- Mark a job FAILED with its error, if the failing attempt still holds it; the attempt is kept.
-- Its times are when it ran (ended ended_ago_ms before now, after ran_ms; no ran_ms: from its claim).
WITH held AS (
    SELECT id, locked_by FROM background_job WHERE id = %(id)s
), failed AS (
    UPDATE background_job AS job
    SET status = 'FAILED', completed_at = now() - %(ended_ago_ms)s * interval '1 millisecond',
        started_at = greatest(job.started_at,
                              now() - (%(ended_ago_ms)s + %(ran_ms)s::float8) * interval '1 millisecond'),
        last_error = %(error)s, last_traceback = %(traceback)s, locked_by = NULL, lease_until = NULL,
        updated_at = now()
    FROM held
    WHERE job.id = held.id AND job.attempts = %(attempts)s AND job.status IS NOT DISTINCT FROM 'PROCESSING'
    RETURNING job.id, job.attempts, job.started_at, job.completed_at, held.locked_by
), kept AS (
    INSERT INTO background_job_attempt (job_id, attempt, started_at, finished_at, worker, outcome, error,
                                        traceback)
    SELECT id, attempts, started_at, completed_at, locked_by, 'failed', %(error)s, %(traceback)s FROM failed
    ON CONFLICT (job_id, attempt) DO NOTHING
)
SELECT id FROM failed;

-- job_requeue --
-- Give claimed but unprocessed jobs back (worker shutdown), without counting a retry.
UPDATE background_job AS job
SET status = 'PENDING', locked_by = NULL, lease_until = NULL, updated_at = now()
FROM unnest(%(ids)s::text[], %(attempts)s::int[]) AS given(id, attempts)
WHERE job.id = given.id AND job.attempts = given.attempts AND job.status IS NOT DISTINCT FROM 'PROCESSING';

-- job_rescue_expired --
-- Return jobs whose worker stopped heartbeating to PENDING, or FAIL them when out of retries;
-- the lost attempts are kept.
WITH lost AS (
    SELECT id, locked_by FROM background_job
    WHERE status = 'PROCESSING' AND lease_until < coalesce(%(now)s, now())
    FOR UPDATE SKIP LOCKED
), rescued AS (
    UPDATE background_job AS job
    SET status = CASE WHEN retried >= max_retries THEN 'FAILED' ELSE 'PENDING' END,
        completed_at = CASE WHEN retried >= max_retries THEN now() END,
        retried = retried + 1,
        run_at = now(),
        last_error = 'Worker ' || coalesce(lost.locked_by, '?')
                     || ' stopped heartbeating while running this job (lease expired)',
        last_traceback = NULL, locked_by = NULL, lease_until = NULL, updated_at = now()
    FROM lost
    WHERE job.id = lost.id
    RETURNING job.id, job.actor, job.queue, job.status, job.attempts, job.started_at, job.last_error,
              lost.locked_by
), kept AS (
    INSERT INTO background_job_attempt (job_id, attempt, started_at, worker, outcome, error)
    SELECT id, attempts, started_at, locked_by, 'lost', last_error FROM rescued
    ON CONFLICT (job_id, attempt) DO NOTHING
)
SELECT id, actor, queue, status FROM rescued;

-- job_delete_finished --
-- Delete up to %(limit)s finished jobs older than %(days)s days (the row count tells how many),
-- none the rollups have not counted yet (rollups.py); their log lines and progress with them, and up
-- to %(limit)s logs as old that no job row claims (its history never written, or the job deleted
-- on the board).
WITH doomed AS (
    SELECT id FROM background_job
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED')
      AND completed_at < coalesce(%(now)s, now()) - %(days)s * interval '1 day'
      AND completed_at < coalesce((SELECT rolled_until FROM background_job_rollup_state), '-infinity')
    LIMIT %(limit)s
), orphaned AS (
    SELECT job_id FROM background_job_progress AS head
    WHERE updated_at < coalesce(%(now)s, now()) - %(days)s * interval '1 day'
      AND NOT EXISTS (SELECT 1 FROM background_job WHERE id = head.job_id)
    LIMIT %(limit)s
), logged AS (
    SELECT id AS job_id FROM doomed UNION ALL SELECT job_id FROM orphaned
), lines AS (
    DELETE FROM background_job_log WHERE job_id IN (SELECT job_id FROM logged)
), heads AS (
    DELETE FROM background_job_progress WHERE job_id IN (SELECT job_id FROM logged)
)
DELETE FROM background_job WHERE id IN (SELECT id FROM doomed);

-- job_find --
-- One job's actor and status, to tell a self-request for a real job from a made-up one.
SELECT actor, status FROM background_job WHERE id = %(id)s;

-- job_list_recent --
-- The newest jobs, oldest first.
SELECT id, actor, status, attempts, retried, last_error, submitted_at, started_at, completed_at
FROM (SELECT * FROM background_job ORDER BY seq DESC LIMIT %(limit)s) AS recent
ORDER BY seq;

-- job_get_many --
-- Progress columns of several jobs.
SELECT id, actor, status, attempts, retried, last_error, submitted_at, started_at, completed_at
FROM background_job WHERE id = ANY(%(ids)s::text[]);

-- queue_notify --
-- Ring the doorbell of a queue's listening consumers (delivered at commit).
SELECT pg_notify('docjobs_jobs', %(queue)s);

-- queue_notify_now --
-- Ring the doorbell alone, in its own transaction. NOTIFY takes a transaction id, so its commit
-- would wait for a WAL flush: a doorbell is not worth one (a lost one costs a poll), and the setting
-- holds for this transaction only, so the pooled session is left as it is.
SELECT set_config('synchronous_commit', 'off', true), pg_notify('docjobs_jobs', %(queue)s);

-- queue_paused --
-- The queues paused on the board.
SELECT queue FROM queue_state WHERE paused;

-- queue_count_unfinished --
-- How many jobs of a queue are PENDING or PROCESSING.
SELECT count(*) AS unfinished FROM background_job
WHERE queue = %(queue)s AND status IN ('PENDING', 'PROCESSING');

-- queue_delete_pending --
-- Drop a queue's PENDING jobs.
DELETE FROM background_job WHERE queue = %(queue)s AND status = 'PENDING';

-- database_commit_asynchronous --
-- docjobs' own writes on this (session-mode) connection return before their WAL is flushed.
SET synchronous_commit TO off;

-- database_commit_durable --
-- Back to the server's synchronous_commit for the app's writes on this connection.
RESET synchronous_commit;

-- queue_listen --
-- Subscribe this connection to queue doorbells.
LISTEN docjobs_jobs;

-- worker_heartbeat --
-- Record that a worker is alive and extend the leases of the jobs it still holds. A held row that
-- another statement is writing at this moment (the worker's own ack, retry or failure) is skipped,
-- not waited for: that write ends the lease, or the next beat extends it. Waiting deadlocked with
-- a batch of acks that locked the same rows in another order (issue 21, make load).
WITH beat AS (
    INSERT INTO worker (id, hostname, pid, queues, concurrency)
    VALUES (%(worker)s, %(hostname)s, %(pid)s, %(queues)s, %(concurrency)s)
    ON CONFLICT (id) DO UPDATE
    SET heartbeat_at = now(), queues = EXCLUDED.queues, concurrency = EXCLUDED.concurrency
    RETURNING id
), held AS (
    SELECT id FROM background_job
    WHERE id = ANY(%(held)s::text[]) AND locked_by = (SELECT id FROM beat)
      AND status IS NOT DISTINCT FROM 'PROCESSING'
    FOR UPDATE SKIP LOCKED
)
UPDATE background_job AS job
SET lease_until = now() + %(lease_seconds)s * interval '1 second'
FROM held
WHERE job.id = held.id;

-- worker_delete --
-- Forget a worker that stopped cleanly.
DELETE FROM worker WHERE id = %(worker)s;

-- worker_count_alive --
-- How many workers heartbeat within the last %(within_seconds)s (any host).
SELECT count(*) AS alive FROM worker WHERE heartbeat_at >= now() - %(within_seconds)s * interval '1 second';

-- worker_delete_stale --
-- Forget workers silent for longer than %(stale_seconds)s.
DELETE FROM worker WHERE heartbeat_at < coalesce(%(now)s, now()) - %(stale_seconds)s * interval '1 second';

-- health_ping --
-- Answer if the database does.
SELECT 1 AS ok;

-- maintenance_try_lock --
-- Become this round's maintainer (transaction-scoped advisory lock) unless another process is.
SELECT pg_try_advisory_xact_lock(%(key)s) AS locked;

-- task_get_or_create --
-- Find a job's task by id, creating it PENDING on first use (and a placeholder job row for a
-- provider whose history of the job is not written yet; any recorded event replaces it, being
-- newer than the epoch: a finite time, which every reader of the row can load).
WITH parent AS (
    INSERT INTO background_job (id, actor, name, status, updated_at)
    VALUES (%(job_id)s, %(actor)s, %(actor)s, 'PROCESSING', 'epoch')
    ON CONFLICT (id) DO NOTHING
), inserted AS (
    INSERT INTO background_job_task (id, job_id, name)
    VALUES (%(id)s, %(job_id)s, %(name)s)
    ON CONFLICT (id) DO NOTHING
    RETURNING status, result, retried, last_error
)
SELECT status, result, retried, last_error FROM inserted
UNION ALL
SELECT status, result, retried, last_error FROM background_job_task
WHERE id = %(id)s AND NOT EXISTS (SELECT 1 FROM inserted);

-- task_complete --
-- Store a task's result and mark it COMPLETED.
UPDATE background_job_task
SET status = 'COMPLETED', result = %(result)s::jsonb, completed_at = now(), updated_at = now()
WHERE id = %(id)s;

-- task_record_failure --
-- Count a failed run of a task and keep its error.
UPDATE background_job_task SET retried = retried + 1, last_error = %(error)s, updated_at = now() WHERE id = %(id)s;

-- job_record_history --
-- Record job events of a provider whose queue lives elsewhere (Redis), one per job. An event
-- further on in the job's life moves its row on, one behind it (a send recorded after the job
-- already started, a slower process) changes nothing: attempts, then the phase within an
-- attempt (running, retried, ended), then the clock. The failed attempts given are kept in
-- background_job_attempt.
WITH event AS (
    -- One JSON document per batch: psycopg adapts eighteen arrays element by element, in Python.
    SELECT * FROM json_to_recordset(%(events)s::json)
     AS event(id text, queue text, actor text, name text, status text, payload text, args text, options text,
              retried int, attempts int, max_retries int, run_at timestamptz, at timestamptz,
              submitted_at timestamptz, started_at timestamptz, completed_at timestamptz,
              last_error text, last_traceback text)
), upserted AS (
    INSERT INTO background_job AS job (
        id, queue, actor, name, status, payload, args, options, retried, attempts, max_retries,
        run_at, submitted_at, started_at, completed_at, updated_at, last_error, last_traceback)
    SELECT event.id, event.queue, event.actor, event.name, event.status, event.payload::jsonb, event.args::jsonb,
           event.options::jsonb, event.retried, event.attempts, event.max_retries, event.run_at, event.submitted_at, event.started_at,
           event.completed_at, event.at, event.last_error, event.last_traceback
    FROM event
    ON CONFLICT (id) DO UPDATE
    SET queue = excluded.queue, actor = excluded.actor, name = excluded.name, status = excluded.status,
        payload = excluded.payload, args = excluded.args, options = excluded.options,
        last_retried_at = CASE WHEN excluded.retried > job.retried THEN excluded.updated_at
                               ELSE job.last_retried_at END,
        retried = excluded.retried, attempts = greatest(job.attempts, excluded.attempts), max_retries = excluded.max_retries, run_at = excluded.run_at,
        submitted_at = least(job.submitted_at, excluded.submitted_at),
        started_at = coalesce(excluded.started_at, job.started_at),
        completed_at = excluded.completed_at, updated_at = excluded.updated_at,
        last_error = coalesce(excluded.last_error, job.last_error),
        last_traceback = coalesce(excluded.last_traceback, job.last_traceback)
    -- A cancelled job stays cancelled: its run may still answer after the cancellation.
    WHERE job.status <> 'CANCELLED'
      AND (job.status IN ('COMPLETED', 'FAILED', 'CANCELLED'), job.attempts,
              CASE job.status WHEN 'PROCESSING' THEN 0 WHEN 'PENDING' THEN 1 ELSE 2 END, job.updated_at)
          <= (excluded.status IN ('COMPLETED', 'FAILED', 'CANCELLED'), excluded.attempts,
              CASE excluded.status WHEN 'PROCESSING' THEN 0 WHEN 'PENDING' THEN 1 ELSE 2 END, excluded.updated_at)
    RETURNING job.id
), kept AS (
    -- Every failure belongs to a job of this batch, so its row exists by the statement's end.
    INSERT INTO background_job_attempt (job_id, attempt, started_at, finished_at, outcome, error, traceback)
    SELECT * FROM json_to_recordset(%(failures)s::json)
     AS failure(job_id text, attempt int, started_at timestamptz, finished_at timestamptz, outcome text,
                error text, traceback text)
    ON CONFLICT (job_id, attempt) DO NOTHING
)
SELECT count(*) AS recorded FROM upserted;

-- job_close_state --
-- Where a job stands, for a run its provider ended without the job seeing it (cancelled, timed out).
SELECT status, submitted_at, started_at FROM background_job WHERE id = %(id)s;

-- job_close --
-- End an open job whose run its provider ended without the job seeing it (cancelled, timed out, given
-- up on). A job that ended already keeps its end: a repeated or late event changes nothing.
UPDATE background_job
SET status = %(status)s, completed_at = now(), updated_at = now(), last_error = %(error)s,
    locked_by = NULL, lease_until = NULL
WHERE id = %(id)s AND status IN ('PENDING', 'PROCESSING')
RETURNING id;

-- job_close_superseded --
-- Close the jobs a debounced run replaced (Inngest ran only the key's latest send): the same job
-- type's PENDING jobs sent before this one with the same key value (every one, without a key).
UPDATE background_job AS job
SET status = 'COMPLETED', completed_at = now(), updated_at = now(), last_error = %(error)s
WHERE job.actor = %(actor)s AND job.status = 'PENDING' AND job.id <> %(id)s
  AND job.submitted_at <= (SELECT submitted_at FROM background_job WHERE id = %(id)s)
  AND (NOT %(keyed)s OR job.payload ->> %(key)s IS NOT DISTINCT FROM %(value)s)
RETURNING job.id;

-- job_outbox_add --
-- Keep jobs sent inside an app transaction (a provider whose queue is elsewhere) until it commits.
INSERT INTO job_outbox (id, queue, data)
SELECT * FROM unnest(%(id)s::text[], %(queue)s::text[], %(data)s::bytea[]);

-- job_outbox_take --
-- Take these outbox rows to send them; rows another process is sending are skipped.
DELETE FROM job_outbox
WHERE id IN (SELECT id FROM job_outbox WHERE id = ANY(%(ids)s::text[]) FOR UPDATE SKIP LOCKED)
RETURNING id, queue, data, created_at;

-- job_outbox_take_stale --
-- Take outbox rows older than the after-commit send should have taken, oldest first.
DELETE FROM job_outbox
WHERE id IN (SELECT id FROM job_outbox
             WHERE created_at < clock_timestamp() - make_interval(secs => %(seconds)s)
             ORDER BY created_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
RETURNING id, queue, data, created_at;

-- database_exists --
-- Whether a database of that name exists on the server.
SELECT 1 AS found FROM pg_database WHERE datname = %(name)s;

-- migration_lock --
-- Serialise migrations across processes until this transaction ends (works through PgBouncer).
SELECT pg_advisory_xact_lock(%(key)s);

-- migration_create_table --
-- The ledger of applied migrations.
CREATE TABLE IF NOT EXISTS docjobs_migration (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- migration_list_applied --
-- Every applied migration.
SELECT version, name, checksum FROM docjobs_migration ORDER BY version;

-- migration_record --
-- Record an applied migration.
INSERT INTO docjobs_migration (version, name, checksum) VALUES (%(version)s, %(name)s, %(checksum)s);
