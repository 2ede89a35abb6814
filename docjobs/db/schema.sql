-- The complete current schema. Migrations in migrations/ must produce exactly this
-- (tests/integration/test_migrations.py checks it).

-- Jobs: the queue, memoised tasks, worker heartbeats, queue state, cron runs, the outbox,
-- the board's audit log.

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
    last_traceback  text,
    -- The message's message_timestamp (ms since the epoch, when it was built): max_age
    -- counts from it. NULL on rows older than migration 0007: submitted_at stands in.
    message_ts_ms   bigint
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
    completed_at timestamptz,
    last_error   text
);

CREATE INDEX background_job_task_job ON background_job_task (job_id);

-- Every attempt that did not end the job well (failure paths only): the board's timeline.
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

-- Lines and progress actors report (docjobs.log_line, docjobs.set_progress). No foreign key:
-- on bullmq and inngest the job's history row may come after its first line.
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
    schedule    text NOT NULL,
    slot        timestamptz NOT NULL,
    job_id      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    fired_by    text,
    status      text NOT NULL DEFAULT 'fired'
                CHECK (status IN ('fired', 'running', 'succeeded', 'failed', 'late', 'paused')),
    started_at  timestamptz,
    finished_at timestamptz,
    error       text,
    PRIMARY KEY (schedule, slot)
);

CREATE INDEX cron_run_created ON cron_run (created_at);

-- Schedules paused on the board; the ledger skips their slots (see cron_run).
CREATE TABLE cron_schedule_state (
    schedule    text PRIMARY KEY,
    paused      boolean NOT NULL,
    paused_at   timestamptz,
    resumed_at  timestamptz,
    changed_by  text NOT NULL
);

CREATE TABLE job_outbox (
    id         text PRIMARY KEY,
    queue      text NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX job_outbox_created ON job_outbox (created_at);

-- Every action taken on the admin board.
CREATE TABLE board_audit (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    -- Who: a user's email, "token", or "development".
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text,
    detail  jsonb NOT NULL DEFAULT '{}'
);

-- Flow control: concurrency slots, throttle and rate-limit windows, debounced sends.

CREATE TABLE flow_slot (
    job        text NOT NULL,
    key        text NOT NULL,
    -- The job id running in the slot.
    holder     text NOT NULL,
    -- A worker killed while running the job frees its slot here.
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (job, key, holder)
);

CREATE TABLE flow_window (
    job          text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('throttle', 'rate_limit')),
    key          text NOT NULL,
    window_start timestamptz NOT NULL,
    runs         integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (job, kind, key, window_start)
);

CREATE TABLE flow_debounce (
    job        text NOT NULL,
    key        text NOT NULL,
    -- The job id of the latest send, the one that runs, and when it was sent (the
    -- message's timestamp, ms): a note that arrives late does not replace a newer one.
    latest     text NOT NULL,
    latest_ms  bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (job, key)
);

CREATE INDEX flow_slot_expires ON flow_slot (expires_at);
CREATE INDEX flow_window_expires ON flow_window (expires_at);
CREATE INDEX flow_debounce_expires ON flow_debounce (expires_at);
-- Finished jobs counted per 5-minute bucket, job type and queue (docjobs/db/rollups.py).

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

-- The domain the jobs act on.

CREATE TABLE "user" (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    name            text,
    roles           text[] NOT NULL DEFAULT '{USER}',
    email_verified  timestamptz,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- The admin board's password (argon2id); NULL: the user cannot sign in to it.
    password_hash   text
);

-- Signed-in board sessions; the cookie carries the token, the table its hash. A
-- session lives while its user is an enabled ADMIN with the password it signed in with.
CREATE TABLE board_session (
    -- sha256 of the random token the cookie carries; the token itself is not stored.
    token_hash           bytea PRIMARY KEY,
    user_id              bigint NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    -- sha256 of the user's password hash at sign-in: a new password, set anywhere, ends the session.
    password_fingerprint bytea NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    expires_at           timestamptz NOT NULL
);

CREATE INDEX board_session_user ON board_session (user_id, created_at);
CREATE INDEX board_session_expires ON board_session (expires_at);

CREATE TABLE document_data (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Organisations, their members and teams, and templates.

CREATE TABLE organisation (
    -- org_ and a random suffix, as the reference service names them.
    id              text PRIMARY KEY,
    name            text NOT NULL,
    url             text NOT NULL UNIQUE,
    owner_user_id   bigint NOT NULL REFERENCES "user" (id),
    -- The plan's claim; 'free' is the internal FREE claim, which gets no limit alerts.
    claim           text NOT NULL DEFAULT 'free',
    -- Paid seats (0: not counted) and monthly quotas (NULL: unlimited).
    member_seats    integer NOT NULL DEFAULT 0 CHECK (member_seats >= 0),
    document_quota  integer CHECK (document_quota >= 0),
    email_quota     integer CHECK (email_quota >= 0),
    api_quota       integer CHECK (api_quota >= 0),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX organisation_owner ON organisation (owner_user_id);

CREATE TABLE organisation_member (
    organisation_id text NOT NULL REFERENCES organisation (id) ON DELETE CASCADE,
    user_id         bigint NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    -- ADMIN and MANAGER hold MANAGE_ORGANISATION.
    role            text NOT NULL DEFAULT 'MEMBER' CHECK (role IN ('ADMIN', 'MANAGER', 'MEMBER')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (organisation_id, user_id)
);

CREATE INDEX organisation_member_user ON organisation_member (user_id);

-- No cascade from the organisation: deleting one removes what it owns in bounded
-- batches (internal.admin-delete-organisation), not in one long transaction.
CREATE TABLE team (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id text NOT NULL REFERENCES organisation (id),
    name            text NOT NULL,
    url             text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX team_organisation ON team (organisation_id);

CREATE TABLE team_member (
    team_id    bigint NOT NULL REFERENCES team (id) ON DELETE CASCADE,
    user_id    bigint NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (team_id, user_id)
);

CREATE INDEX team_member_user ON team_member (user_id);

CREATE TABLE template (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    team_id             bigint NOT NULL REFERENCES team (id),
    owner_id            bigint NOT NULL REFERENCES "user" (id),
    title               text NOT NULL,
    data_id             bigint NOT NULL REFERENCES document_data (id),
    signing_order       text NOT NULL DEFAULT 'PARALLEL' CHECK (signing_order IN ('PARALLEL', 'SEQUENTIAL')),
    subject             text,
    message             text,
    -- The public direct link's token; NULL: the template has none.
    direct_link_token   text UNIQUE,
    direct_link_enabled boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX template_team ON template (team_id);

-- A template's recipients, numbered from 1: a bulk send's CSV fills recipient <n>
-- from its columns recipient_<n>_email and recipient_<n>_name.
CREATE TABLE template_recipient (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    template_id   bigint NOT NULL REFERENCES template (id) ON DELETE CASCADE,
    position      integer NOT NULL CHECK (position >= 1),
    email         text NOT NULL DEFAULT '',
    name          text NOT NULL DEFAULT '',
    role          text NOT NULL DEFAULT 'SIGNER' CHECK (role IN ('SIGNER', 'APPROVER', 'VIEWER', 'CC')),
    signing_order integer,
    UNIQUE (template_id, position)
);

CREATE TABLE document (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    envelope_id       text NOT NULL UNIQUE,
    owner_id          bigint NOT NULL REFERENCES "user" (id),
    title             text NOT NULL,
    status            text NOT NULL DEFAULT 'DRAFT'
                      CHECK (status IN ('DRAFT', 'PENDING', 'COMPLETED', 'REJECTED', 'CANCELLED')),
    signing_order     text NOT NULL DEFAULT 'PARALLEL' CHECK (signing_order IN ('PARALLEL', 'SEQUENTIAL')),
    subject           text,
    message           text,
    -- {"sendAfter": {"unit": "day", "amount": 5}, "repeatEvery": {...}}; each may be {"disabled": true}.
    reminder_settings jsonb,
    original_data_id  bigint NOT NULL REFERENCES document_data (id),
    current_data_id   bigint NOT NULL REFERENCES document_data (id),
    qr_token          text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    completed_at      timestamptz,
    deleted_at        timestamptz,
    team_id           bigint REFERENCES team (id),
    template_id       bigint REFERENCES template (id) ON DELETE SET NULL,
    source            text NOT NULL DEFAULT 'DOCUMENT'
                      CHECK (source IN ('DOCUMENT', 'TEMPLATE', 'TEMPLATE_DIRECT_LINK')),
    -- What asked for the document (a bulk send's job id and CSV row), so a creation run
    -- again after a crash finds the document it made instead of making a second one.
    request_key       text UNIQUE
);

CREATE INDEX document_pending ON document (id) WHERE status = 'PENDING' AND deleted_at IS NULL;

CREATE TABLE recipient (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id            bigint NOT NULL REFERENCES document (id) ON DELETE CASCADE,
    email                  text NOT NULL,
    name                   text NOT NULL DEFAULT '',
    role                   text NOT NULL DEFAULT 'SIGNER' CHECK (role IN ('SIGNER', 'APPROVER', 'VIEWER', 'CC')),
    token                  text NOT NULL UNIQUE,
    signing_order          integer,
    signing_status         text NOT NULL DEFAULT 'NOT_SIGNED'
                           CHECK (signing_status IN ('NOT_SIGNED', 'SIGNED', 'REJECTED')),
    send_status            text NOT NULL DEFAULT 'NOT_SENT' CHECK (send_status IN ('NOT_SENT', 'SENT')),
    read_status            text NOT NULL DEFAULT 'NOT_OPENED' CHECK (read_status IN ('NOT_OPENED', 'OPENED')),
    rejection_reason       text,
    sent_at                timestamptz,
    signed_at              timestamptz,
    expires_at             timestamptz,
    expiration_notified_at timestamptz,
    next_reminder_at       timestamptz,
    last_reminder_sent_at  timestamptz,
    reminder_count         integer NOT NULL DEFAULT 0,
    -- An address the mail server refused for good: no more email to it.
    email_refused_at       timestamptz
);

CREATE INDEX recipient_document ON recipient (document_id);
CREATE INDEX recipient_expiring ON recipient (expires_at)
    WHERE expiration_notified_at IS NULL AND signing_status = 'NOT_SIGNED';
CREATE INDEX recipient_reminder_due ON recipient (next_reminder_at) WHERE next_reminder_at IS NOT NULL;

CREATE TABLE field (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id    bigint NOT NULL REFERENCES document (id) ON DELETE CASCADE,
    recipient_id   bigint NOT NULL REFERENCES recipient (id) ON DELETE CASCADE,
    type           text NOT NULL CHECK (type IN (
                       'SIGNATURE', 'FREE_SIGNATURE', 'INITIALS', 'NAME', 'EMAIL', 'DATE', 'TEXT',
                       'NUMBER', 'CHECKBOX', 'RADIO', 'DROPDOWN')),
    page           integer NOT NULL CHECK (page >= 1),
    -- Position and size as percentages of the page.
    position_x     numeric NOT NULL CHECK (position_x BETWEEN 0 AND 100),
    position_y     numeric NOT NULL CHECK (position_y BETWEEN 0 AND 100),
    width          numeric NOT NULL CHECK (width BETWEEN 0 AND 100),
    height         numeric NOT NULL CHECK (height BETWEEN 0 AND 100),
    required       boolean NOT NULL DEFAULT true,
    inserted       boolean NOT NULL DEFAULT false,
    custom_text    text,
    field_meta     jsonb,
    signature_image bytea,
    typed_signature text
);

CREATE INDEX field_document ON field (document_id);

CREATE TABLE audit_log (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id  bigint NOT NULL REFERENCES document (id) ON DELETE CASCADE,
    type         text NOT NULL,
    data         jsonb NOT NULL DEFAULT '{}',
    user_id      bigint,
    email        text,
    name         text,
    ip_address   text,
    user_agent   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX audit_log_document ON audit_log (document_id, created_at);

CREATE TABLE webhook (
    id             text PRIMARY KEY,
    user_id        bigint NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    webhook_url    text NOT NULL,
    event_triggers text[] NOT NULL,
    secret         text,
    enabled        boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_call (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       text NOT NULL REFERENCES webhook (id) ON DELETE CASCADE,
    job_id           text,
    status           text NOT NULL CHECK (status IN ('SUCCESS', 'FAILED')),
    url              text NOT NULL,
    event            text NOT NULL,
    request_body     jsonb NOT NULL,
    response_code    integer NOT NULL,
    response_headers jsonb,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_call_webhook ON webhook_call (webhook_id, created_at);
CREATE INDEX webhook_call_created ON webhook_call (created_at);

CREATE TABLE rate_limit (
    key        text NOT NULL,
    action     text NOT NULL,
    bucket     timestamptz NOT NULL,
    count      integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, action, bucket)
);

CREATE INDEX rate_limit_created ON rate_limit (created_at);

CREATE TABLE verification_token (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identifier text NOT NULL,
    token      text NOT NULL UNIQUE,
    user_id    bigint NOT NULL REFERENCES "user" (id) ON DELETE CASCADE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX document_team ON document (team_id) WHERE team_id IS NOT NULL;

CREATE INDEX document_original_data ON document (original_data_id);
CREATE INDEX document_current_data ON document (current_data_id);
CREATE INDEX document_template ON document (template_id) WHERE template_id IS NOT NULL;
CREATE INDEX template_data ON template (data_id);
CREATE INDEX field_recipient ON field (recipient_id);
