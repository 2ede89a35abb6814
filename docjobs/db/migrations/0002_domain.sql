-- The domain the jobs act on: users, documents, recipients, fields, audit log,
-- webhooks and their calls, rate limits, verification tokens. Only the columns
-- the jobs need; the reference service's names, in snake_case.

-- A task out of retries names the error it kept failing with.
ALTER TABLE background_job_task ADD COLUMN last_error text;

CREATE TABLE "user" (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    name            text,
    roles           text[] NOT NULL DEFAULT '{USER}',
    email_verified  timestamptz,
    disabled        boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE document_data (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    data       bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
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
    deleted_at        timestamptz
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
