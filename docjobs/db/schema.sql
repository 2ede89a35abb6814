-- The complete current schema. Migrations in migrations/ must produce exactly this
-- (tests/integration/test_migrations.py checks it).

CREATE TABLE background_job (
    id              text PRIMARY KEY,
    -- FIFO tie-break among jobs due at the same instant.
    seq             bigint GENERATED ALWAYS AS IDENTITY,
    queue           text NOT NULL DEFAULT 'default',
    actor           text NOT NULL,
    name            text NOT NULL,
    version         text NOT NULL DEFAULT '1.0.0',
    status          text NOT NULL DEFAULT 'PENDING'
                    CHECK (status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')),
    payload         jsonb NOT NULL DEFAULT '{}',
    args            jsonb NOT NULL DEFAULT '[]',
    options         jsonb NOT NULL DEFAULT '{}',
    retried         integer NOT NULL DEFAULT 0,
    max_retries     integer NOT NULL DEFAULT 3,
    priority        integer NOT NULL DEFAULT 0,
    -- Incremented by every claim; acks, nacks and retries carry the value they
    -- claimed and only apply while it is current (fencing).
    attempts        integer NOT NULL DEFAULT 0,
    run_at          timestamptz NOT NULL DEFAULT now(),
    submitted_at    timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    completed_at    timestamptz,
    last_retried_at timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    locked_by       text,
    lease_until     timestamptz,
    last_error      text,
    last_traceback  text
) WITH (
    -- The table churns: vacuum it early and often.
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_cost_limit = 2000,
    autovacuum_analyze_scale_factor = 0.02
);

CREATE INDEX background_job_pending ON background_job (queue, priority, run_at, seq)
    WHERE status = 'PENDING';
CREATE INDEX background_job_processing ON background_job (locked_by, lease_until)
    WHERE status = 'PROCESSING';
CREATE INDEX background_job_finished ON background_job (completed_at)
    WHERE status IN ('COMPLETED', 'FAILED', 'CANCELLED');

CREATE TABLE background_job_task (
    id           text PRIMARY KEY,
    job_id       text NOT NULL REFERENCES background_job (id) ON DELETE CASCADE ON UPDATE CASCADE,
    name         text NOT NULL,
    status       text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED')),
    result       jsonb,
    retried      integer NOT NULL DEFAULT 0,
    max_retries  integer NOT NULL DEFAULT 3,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz
);

CREATE INDEX background_job_task_job ON background_job_task (job_id);

CREATE TABLE worker (
    id           text PRIMARY KEY,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    queues       text[] NOT NULL DEFAULT '{}',
    concurrency  integer NOT NULL DEFAULT 0,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queue_state (
    queue      text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cron_run (
    schedule   text NOT NULL,
    slot       timestamptz NOT NULL,
    job_id     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule, slot)
);
