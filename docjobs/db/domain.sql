-- The domain's queries, one block each, read only by docjobs.db.domain.DomainStore.
-- Format as in queries.sql: "-- name --", a description line, the query.

-- user_insert --
-- Create a user.
INSERT INTO "user" (email, name, roles, email_verified)
VALUES (%(email)s, %(name)s, %(roles)s, %(email_verified)s)
RETURNING *;

-- user_get --
-- One user by id.
SELECT * FROM "user" WHERE id = %(id)s;

-- user_get_by_email --
-- One user by email address.
SELECT * FROM "user" WHERE lower(email) = lower(%(email)s);

-- user_verify_email --
-- Mark a user's email address verified.
UPDATE "user" SET email_verified = now() WHERE id = %(id)s RETURNING *;

-- document_data_insert --
-- Store a PDF.
INSERT INTO document_data (name, data) VALUES (%(name)s, %(data)s) RETURNING id;

-- document_data_get --
-- One stored PDF.
SELECT * FROM document_data WHERE id = %(id)s;

-- document_insert --
-- Create a DRAFT document around a stored PDF.
INSERT INTO document
    (envelope_id, owner_id, title, signing_order, subject, message, reminder_settings,
     original_data_id, current_data_id)
VALUES
    (%(envelope_id)s, %(owner_id)s, %(title)s, %(signing_order)s, %(subject)s, %(message)s,
     %(reminder_settings)s::jsonb, %(data_id)s, %(data_id)s)
RETURNING *;

-- document_get --
-- One document with its owner's name and email.
SELECT d.*, u.email AS owner_email, u.name AS owner_name, u.disabled AS owner_disabled
FROM document d JOIN "user" u ON u.id = d.owner_id
WHERE d.id = %(id)s;

-- document_get_by_envelope --
-- One document by envelope id, with its owner's name and email.
SELECT d.*, u.email AS owner_email, u.name AS owner_name, u.disabled AS owner_disabled
FROM document d JOIN "user" u ON u.id = d.owner_id
WHERE d.envelope_id = %(envelope_id)s;

-- document_lock --
-- Lock a document's row for the rest of the transaction.
SELECT id, status FROM document WHERE id = %(id)s FOR UPDATE;

-- document_set_status --
-- Move a document to another status.
UPDATE document SET status = %(status)s, updated_at = now() WHERE id = %(id)s RETURNING *;

-- document_seal --
-- Store the sealed PDF and close the document (COMPLETED or REJECTED).
UPDATE document
SET status = %(status)s, current_data_id = %(data_id)s, completed_at = now(), updated_at = now(),
    qr_token = coalesce(qr_token, %(qr_token)s)
WHERE id = %(id)s
RETURNING *;

-- document_mark_deleted --
-- Soft-delete a document.
UPDATE document SET deleted_at = now(), updated_at = now() WHERE id = %(id)s RETURNING *;

-- document_select_unsealed --
-- Documents every recipient finished (or one rejected) that are still PENDING: the seal sweep.
SELECT d.id FROM document d
WHERE d.status = 'PENDING' AND d.deleted_at IS NULL
  AND EXISTS (SELECT 1 FROM recipient r WHERE r.document_id = d.id)
  AND (
        NOT EXISTS (SELECT 1 FROM recipient r WHERE r.document_id = d.id
                    AND r.signing_status <> 'SIGNED' AND r.role <> 'CC')
        OR EXISTS (SELECT 1 FROM recipient r WHERE r.document_id = d.id AND r.signing_status = 'REJECTED')
      )
  AND NOT EXISTS (SELECT 1 FROM recipient r WHERE r.document_id = d.id
                  AND r.signed_at > coalesce(%(now)s, now()) - interval '15 minutes')
  AND EXISTS (SELECT 1 FROM recipient r WHERE r.document_id = d.id
              AND r.signed_at > coalesce(%(now)s, now()) - interval '6 hours')
ORDER BY d.id
LIMIT %(limit)s;

-- recipient_insert --
-- Add a recipient to a document.
INSERT INTO recipient (document_id, email, name, role, token, signing_order, expires_at)
VALUES (%(document_id)s, %(email)s, %(name)s, %(role)s, %(token)s, %(signing_order)s, %(expires_at)s)
RETURNING *;

-- recipient_list --
-- A document's recipients in signing order.
SELECT * FROM recipient WHERE document_id = %(document_id)s ORDER BY signing_order NULLS LAST, id;

-- recipient_get --
-- One recipient.
SELECT * FROM recipient WHERE id = %(id)s;

-- recipient_get_by_token --
-- One recipient by signing token.
SELECT * FROM recipient WHERE token = %(token)s;

-- recipient_mark_sent --
-- Record that a recipient's invitation went out, and when to remind them.
UPDATE recipient
SET send_status = 'SENT', sent_at = coalesce(sent_at, now()), next_reminder_at = %(next_reminder_at)s
WHERE id = %(id)s
RETURNING *;

-- recipient_mark_opened --
-- Record that a recipient opened the document.
UPDATE recipient SET read_status = 'OPENED' WHERE id = %(id)s RETURNING *;

-- recipient_sign --
-- Sign as a recipient who has not signed or rejected yet.
UPDATE recipient SET signing_status = 'SIGNED', signed_at = now(), next_reminder_at = NULL
WHERE id = %(id)s AND signing_status = 'NOT_SIGNED'
RETURNING *;

-- recipient_reject --
-- Reject as a recipient who has not signed or rejected yet.
UPDATE recipient
SET signing_status = 'REJECTED', rejection_reason = %(reason)s, signed_at = now(), next_reminder_at = NULL
WHERE id = %(id)s AND signing_status = 'NOT_SIGNED'
RETURNING *;

-- recipient_sign_cc --
-- CC recipients count as signed when a document closes.
UPDATE recipient SET signing_status = 'SIGNED' WHERE document_id = %(document_id)s AND role = 'CC';

-- recipient_mark_refused --
-- Record that the mail server refused a recipient's address for good.
UPDATE recipient SET email_refused_at = now(), next_reminder_at = NULL WHERE id = %(id)s;

-- recipient_select_expired --
-- Recipients whose signing window closed and who were not told yet: the expiry sweep.
SELECT r.id FROM recipient r JOIN document d ON d.id = r.document_id
WHERE r.expires_at <= coalesce(%(now)s, now()) AND r.expiration_notified_at IS NULL
  AND r.signing_status NOT IN ('SIGNED', 'REJECTED')
  AND d.status = 'PENDING' AND d.deleted_at IS NULL
ORDER BY r.expires_at
LIMIT %(limit)s;

-- recipient_claim_expired --
-- Claim an expired recipient for notification; no row when someone else did, or it no longer applies.
UPDATE recipient r SET expiration_notified_at = now()
FROM document d
WHERE r.id = %(id)s AND d.id = r.document_id
  AND r.expires_at <= now() AND r.expiration_notified_at IS NULL
  AND r.signing_status NOT IN ('SIGNED', 'REJECTED')
  AND d.status = 'PENDING' AND d.deleted_at IS NULL
RETURNING r.*;

-- recipient_select_reminder_due --
-- Recipients due a signing reminder: the reminder sweep.
SELECT r.id FROM recipient r JOIN document d ON d.id = r.document_id
WHERE r.next_reminder_at <= coalesce(%(now)s, now()) AND r.signing_status = 'NOT_SIGNED'
  AND r.send_status = 'SENT' AND r.role <> 'CC' AND r.email_refused_at IS NULL
  AND (r.expires_at IS NULL OR r.expires_at > coalesce(%(now)s, now()))
  AND d.status = 'PENDING' AND d.deleted_at IS NULL
ORDER BY r.next_reminder_at
LIMIT %(limit)s;

-- recipient_claim_reminder --
-- Claim a due reminder; no row when someone else did, or it no longer applies.
UPDATE recipient r
SET last_reminder_sent_at = now(), next_reminder_at = NULL, reminder_count = r.reminder_count + 1
FROM document d
WHERE r.id = %(id)s AND d.id = r.document_id
  AND r.next_reminder_at <= now() AND r.signing_status = 'NOT_SIGNED'
  AND r.send_status = 'SENT' AND r.role <> 'CC' AND r.email_refused_at IS NULL
  AND (r.expires_at IS NULL OR r.expires_at > now())
  AND d.status = 'PENDING' AND d.deleted_at IS NULL
RETURNING r.*;

-- recipient_set_next_reminder --
-- Schedule (or clear) a recipient's next reminder.
UPDATE recipient SET next_reminder_at = %(next_reminder_at)s WHERE id = %(id)s;

-- field_insert --
-- Place a field for a recipient.
INSERT INTO field
    (document_id, recipient_id, type, page, position_x, position_y, width, height, required, field_meta)
VALUES
    (%(document_id)s, %(recipient_id)s, %(type)s, %(page)s, %(position_x)s, %(position_y)s, %(width)s,
     %(height)s, %(required)s, %(field_meta)s::jsonb)
RETURNING *;

-- field_list --
-- A document's fields.
SELECT * FROM field WHERE document_id = %(document_id)s ORDER BY page, id;

-- field_fill --
-- Insert a recipient's value into one of their fields.
UPDATE field
SET inserted = true, custom_text = %(custom_text)s, signature_image = %(signature_image)s,
    typed_signature = %(typed_signature)s
WHERE id = %(id)s AND recipient_id = %(recipient_id)s
RETURNING *;

-- field_count_unfilled_required --
-- Required fields nobody filled yet.
SELECT count(*) AS unfilled FROM field WHERE document_id = %(document_id)s AND required AND NOT inserted;

-- audit_log_insert --
-- Append to a document's audit log.
INSERT INTO audit_log (document_id, type, data, user_id, email, name, ip_address, user_agent)
VALUES (%(document_id)s, %(type)s, %(data)s::jsonb, %(user_id)s, %(email)s, %(name)s, %(ip_address)s,
        %(user_agent)s)
RETURNING *;

-- audit_log_list --
-- A document's audit log, oldest first.
SELECT * FROM audit_log WHERE document_id = %(document_id)s ORDER BY created_at, id;

-- webhook_insert --
-- Subscribe a URL to events.
INSERT INTO webhook (id, user_id, webhook_url, event_triggers, secret, enabled)
VALUES (%(id)s, %(user_id)s, %(webhook_url)s, %(event_triggers)s, %(secret)s, %(enabled)s)
RETURNING *;

-- webhook_get --
-- One webhook.
SELECT * FROM webhook WHERE id = %(id)s;

-- webhook_list_for_event --
-- A user's enabled webhooks subscribed to an event.
SELECT * FROM webhook
WHERE user_id = %(user_id)s AND enabled AND %(event)s = ANY (event_triggers)
ORDER BY created_at, id;

-- webhook_set_enabled --
-- Enable or disable a webhook.
UPDATE webhook SET enabled = %(enabled)s, updated_at = now() WHERE id = %(id)s;

-- webhook_delete --
-- Delete a webhook and its calls.
DELETE FROM webhook WHERE id = %(id)s;

-- webhook_call_insert --
-- Record one delivery attempt.
INSERT INTO webhook_call
    (webhook_id, job_id, status, url, event, request_body, response_code, response_headers, response_body)
VALUES
    (%(webhook_id)s, %(job_id)s, %(status)s, %(url)s, %(event)s, %(request_body)s::jsonb,
     %(response_code)s, %(response_headers)s::jsonb, %(response_body)s::jsonb)
RETURNING *;

-- webhook_call_list --
-- A webhook's delivery attempts, oldest first.
SELECT * FROM webhook_call WHERE webhook_id = %(webhook_id)s ORDER BY created_at, id;

-- webhook_call_delete_old --
-- Delete up to %(limit)s delivery attempts older than %(days)s days.
DELETE FROM webhook_call WHERE id IN (
    SELECT id FROM webhook_call WHERE created_at < coalesce(%(now)s, now()) - %(days)s * interval '1 day'
    LIMIT %(limit)s
);

-- rate_limit_delete_old --
-- Delete up to %(limit)s rate-limit buckets older than a day.
DELETE FROM rate_limit WHERE ctid IN (
    SELECT ctid FROM rate_limit WHERE created_at < coalesce(%(now)s, now()) - interval '24 hours'
    LIMIT %(limit)s
);

-- verification_token_insert --
-- Create a token that expires after %(seconds)s seconds.
INSERT INTO verification_token (identifier, token, user_id, expires_at)
VALUES (%(identifier)s, %(token)s, %(user_id)s, now() + %(seconds)s * interval '1 second')
RETURNING *;

-- verification_token_list --
-- A user's tokens of one kind, newest first.
SELECT * FROM verification_token
WHERE user_id = %(user_id)s AND identifier = %(identifier)s
ORDER BY created_at DESC, id DESC;

-- Templates (issue 22): read by docjobs.db.domain.templates.TemplateQueries.

-- template_insert --
-- Create a template around a stored PDF.
INSERT INTO template
    (team_id, owner_id, title, data_id, signing_order, subject, message, direct_link_token,
     direct_link_enabled)
VALUES
    (%(team_id)s, %(owner_id)s, %(title)s, %(data_id)s, %(signing_order)s, %(subject)s, %(message)s,
     %(direct_link_token)s, %(direct_link_token)s::text IS NOT NULL)
RETURNING *;

-- template_recipient_insert --
-- Add recipient number %(position)s to a template.
INSERT INTO template_recipient (template_id, position, email, name, role, signing_order)
VALUES (%(template_id)s, %(position)s, %(email)s, %(name)s, %(role)s, %(signing_order)s)
RETURNING *;

-- template_get --
-- One template with its owner's name and email and its team's url.
SELECT t.*, u.email AS owner_email, u.name AS owner_name, tm.url AS team_url
FROM template t JOIN "user" u ON u.id = t.owner_id JOIN team tm ON tm.id = t.team_id
WHERE t.id = %(id)s;

-- template_get_by_direct_link --
-- The template an enabled direct link opens.
SELECT * FROM template WHERE direct_link_token = %(token)s AND direct_link_enabled;

-- template_recipient_list --
-- A template's recipients by number.
SELECT * FROM template_recipient WHERE template_id = %(template_id)s ORDER BY position;

-- template_user_may_use --
-- Whether a user owns the template or is a member of its team.
SELECT EXISTS (
    SELECT 1 FROM template t
    WHERE t.id = %(template_id)s
      AND (t.owner_id = %(user_id)s
           OR EXISTS (SELECT 1 FROM team_member m WHERE m.team_id = t.team_id AND m.user_id = %(user_id)s))
) AS allowed;

-- document_insert_from_template --
-- Create a DRAFT document from a template; no row when %(request_key)s made one already.
INSERT INTO document
    (envelope_id, owner_id, title, signing_order, subject, message, original_data_id, current_data_id,
     team_id, template_id, source, request_key)
SELECT %(envelope_id)s, %(owner_id)s, t.title, t.signing_order, t.subject, t.message, t.data_id, t.data_id,
       t.team_id, t.id, %(source)s, %(request_key)s
FROM template t WHERE t.id = %(template_id)s
ON CONFLICT (request_key) DO NOTHING
RETURNING *;

-- document_get_by_request_key --
-- The document a request (a bulk send's row) made, if any.
SELECT id FROM document WHERE request_key = %(request_key)s;
-- Organisations and teams (issue 22): docjobs.db.domain.organisations. The admin's
-- organisation delete removes rows in batches of at most %(limit)s per statement,
-- children before parents, so no cascade deletes more than the batch; documents and
-- templates go a chunk at a time, each chunk with all its children, so no statement
-- scans again the rows earlier batches emptied.

-- organisation_insert --
-- Create an organisation.
INSERT INTO organisation (id, name, url, owner_user_id, claim, member_seats, document_quota, email_quota, api_quota)
VALUES (%(id)s, %(name)s, %(url)s, %(owner_user_id)s, %(claim)s, %(member_seats)s, %(document_quota)s,
        %(email_quota)s, %(api_quota)s)
RETURNING *;

-- organisation_get --
-- One organisation with its owner's name and email, and how many members it has.
SELECT o.*, u.email AS owner_email, u.name AS owner_name,
       (SELECT count(*) FROM organisation_member m WHERE m.organisation_id = o.id) AS member_count
FROM organisation o JOIN "user" u ON u.id = o.owner_user_id
WHERE o.id = %(id)s;

-- organisation_member_upsert --
-- Add a member to an organisation, or change their role.
INSERT INTO organisation_member (organisation_id, user_id, role)
VALUES (%(organisation_id)s, %(user_id)s, %(role)s)
ON CONFLICT (organisation_id, user_id) DO UPDATE SET role = excluded.role
RETURNING *;

-- organisation_member_delete --
-- Remove a member from an organisation and from its teams.
WITH left_teams AS (
    DELETE FROM team_member tm USING team t
    WHERE t.id = tm.team_id AND t.organisation_id = %(organisation_id)s AND tm.user_id = %(user_id)s
)
DELETE FROM organisation_member
WHERE organisation_id = %(organisation_id)s AND user_id = %(user_id)s
RETURNING *;

-- organisation_member_list --
-- An organisation's members with the given roles, with their names and emails.
SELECT m.user_id, m.role, u.email, u.name
FROM organisation_member m JOIN "user" u ON u.id = m.user_id
WHERE m.organisation_id = %(organisation_id)s AND m.role = ANY (%(roles)s)
ORDER BY m.user_id;

-- team_insert --
-- Create a team in an organisation.
INSERT INTO team (organisation_id, name, url) VALUES (%(organisation_id)s, %(name)s, %(url)s) RETURNING *;

-- team_get --
-- One team.
SELECT * FROM team WHERE id = %(id)s;

-- team_member_insert --
-- Add a user to a team.
INSERT INTO team_member (team_id, user_id) VALUES (%(team_id)s, %(user_id)s)
ON CONFLICT DO NOTHING;

-- team_member_list --
-- A team's members with their names and emails.
SELECT u.id, u.email, u.name
FROM team_member tm JOIN "user" u ON u.id = tm.user_id
WHERE tm.team_id = %(team_id)s
ORDER BY u.id;

-- team_count_owned --
-- How many documents and templates a team holds.
SELECT (SELECT count(*) FROM document WHERE team_id = %(id)s)
     + (SELECT count(*) FROM template WHERE team_id = %(id)s) AS owned;

-- team_delete --
-- Delete a team (its members go with it).
DELETE FROM team WHERE id = %(id)s RETURNING *;

-- document_set_team --
-- Put a document in a team.
UPDATE document SET team_id = %(team_id)s WHERE id = %(id)s RETURNING *;

-- organisation_detach_pending_documents --
-- Take up to %(limit)s documents still out for signing out of the organisation's teams.
UPDATE document SET team_id = NULL, template_id = NULL
WHERE id IN (
    SELECT d.id FROM document d JOIN team t ON t.id = d.team_id
    WHERE t.organisation_id = %(organisation_id)s AND d.status = 'PENDING' AND d.deleted_at IS NULL
    LIMIT %(limit)s
);

-- organisation_document_chunk --
-- Up to %(limit)s of the organisation's documents to delete (all but those out for signing).
SELECT d.id FROM document d JOIN team t ON t.id = d.team_id
WHERE t.organisation_id = %(organisation_id)s AND (d.status <> 'PENDING' OR d.deleted_at IS NOT NULL)
LIMIT %(limit)s;

-- document_delete_audit_logs --
-- Delete up to %(limit)s audit entries of the given documents (unless one went out for signing meanwhile).
DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log WHERE document_id IN (
        SELECT id FROM document WHERE id = ANY (%(ids)s) AND (status <> 'PENDING' OR deleted_at IS NOT NULL)
    )
    LIMIT %(limit)s
);

-- document_delete_fields --
-- Delete up to %(limit)s fields of the given documents (unless one went out for signing meanwhile).
DELETE FROM field WHERE id IN (
    SELECT id FROM field WHERE document_id IN (
        SELECT id FROM document WHERE id = ANY (%(ids)s) AND (status <> 'PENDING' OR deleted_at IS NOT NULL)
    )
    LIMIT %(limit)s
);

-- document_delete_recipients --
-- Delete up to %(limit)s recipients, with no fields left, of the given documents (as above).
DELETE FROM recipient r WHERE r.id IN (
    SELECT id FROM recipient WHERE document_id IN (
        SELECT id FROM document WHERE id = ANY (%(ids)s) AND (status <> 'PENDING' OR deleted_at IS NOT NULL)
    )
    LIMIT %(limit)s
) AND NOT EXISTS (SELECT 1 FROM field f WHERE f.recipient_id = r.id);

-- document_delete_emptied --
-- Delete the given documents that have nothing left under them; their PDFs' ids.
DELETE FROM document d
WHERE d.id = ANY (%(ids)s) AND (d.status <> 'PENDING' OR d.deleted_at IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM recipient r WHERE r.document_id = d.id)
  AND NOT EXISTS (SELECT 1 FROM field f WHERE f.document_id = d.id)
  AND NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.document_id = d.id)
RETURNING original_data_id, current_data_id;

-- organisation_template_chunk --
-- Up to %(limit)s of the organisation's templates.
SELECT tp.id FROM template tp JOIN team t ON t.id = tp.team_id
WHERE t.organisation_id = %(organisation_id)s
LIMIT %(limit)s;

-- template_delete_recipients --
-- Delete up to %(limit)s recipients of the given templates.
DELETE FROM template_recipient WHERE id IN (
    SELECT id FROM template_recipient WHERE template_id = ANY (%(ids)s) LIMIT %(limit)s
);

-- template_delete_emptied --
-- Delete the given templates that have no recipients left; their PDFs' ids.
DELETE FROM template tp
WHERE tp.id = ANY (%(ids)s)
  AND NOT EXISTS (SELECT 1 FROM template_recipient tr WHERE tr.template_id = tp.id)
RETURNING data_id AS original_data_id, data_id AS current_data_id;

-- document_data_delete_unused --
-- Delete the given stored PDFs that no document or template uses any more.
DELETE FROM document_data dd
WHERE dd.id = ANY (%(ids)s)
  AND NOT EXISTS (SELECT 1 FROM document d WHERE d.original_data_id = dd.id)
  AND NOT EXISTS (SELECT 1 FROM document d WHERE d.current_data_id = dd.id)
  AND NOT EXISTS (SELECT 1 FROM template tp WHERE tp.data_id = dd.id);

-- organisation_delete_team_members --
-- Delete up to %(limit)s memberships of the organisation's teams.
DELETE FROM team_member WHERE (team_id, user_id) IN (
    SELECT tm.team_id, tm.user_id FROM team_member tm JOIN team t ON t.id = tm.team_id
    WHERE t.organisation_id = %(organisation_id)s
    LIMIT %(limit)s
);

-- organisation_delete_teams --
-- Delete up to %(limit)s of the organisation's teams that hold nothing any more.
DELETE FROM team WHERE id IN (
    SELECT t.id FROM team t
    WHERE t.organisation_id = %(organisation_id)s
      AND NOT EXISTS (SELECT 1 FROM team_member tm WHERE tm.team_id = t.id)
      AND NOT EXISTS (SELECT 1 FROM document d WHERE d.team_id = t.id)
      AND NOT EXISTS (SELECT 1 FROM template tp WHERE tp.team_id = t.id)
    LIMIT %(limit)s
);

-- organisation_delete_members --
-- Delete up to %(limit)s memberships of the organisation.
DELETE FROM organisation_member WHERE (organisation_id, user_id) IN (
    SELECT organisation_id, user_id FROM organisation_member
    WHERE organisation_id = %(organisation_id)s
    LIMIT %(limit)s
);

-- organisation_delete --
-- Delete an organisation that has no teams or members left.
DELETE FROM organisation o
WHERE o.id = %(organisation_id)s
  AND NOT EXISTS (SELECT 1 FROM team t WHERE t.organisation_id = o.id)
  AND NOT EXISTS (SELECT 1 FROM organisation_member m WHERE m.organisation_id = o.id);
