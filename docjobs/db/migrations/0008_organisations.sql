-- Organisations, their members and teams, and templates (issue 22): what the
-- organisation and team emails, the direct-template email, the bulk send and an
-- admin's organisation delete act on. Only the columns those jobs need.

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

ALTER TABLE document ADD COLUMN team_id bigint REFERENCES team (id);
ALTER TABLE document ADD COLUMN template_id bigint REFERENCES template (id) ON DELETE SET NULL;
ALTER TABLE document ADD COLUMN source text NOT NULL DEFAULT 'DOCUMENT'
    CHECK (source IN ('DOCUMENT', 'TEMPLATE', 'TEMPLATE_DIRECT_LINK'));
-- What asked for the document (a bulk send's job id and CSV row), so a creation run
-- again after a crash finds the document it made instead of making a second one.
ALTER TABLE document ADD COLUMN request_key text UNIQUE;

CREATE INDEX document_team ON document (team_id) WHERE team_id IS NOT NULL;
