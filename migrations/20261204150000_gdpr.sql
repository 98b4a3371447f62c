-- +goose Up
-- Personal data (GDPR). A resident may close their account, and accounts
-- nobody logged into for a long time are warned, then closed by the daily
-- privacy job. A closed account keeps only the commune's own reference of
-- the payer: its invoices and payments stay, as the commune's accounting
-- records, attached to it.
ALTER TABLE accounts DROP CONSTRAINT accounts_status_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_status_check
    CHECK (status IN ('pending', 'active', 'disabled', 'closed'));
ALTER TABLE accounts
    ADD COLUMN closed_at            timestamptz,
    -- The last sign of life: a login (password or remember-me), an
    -- activation or a password reset. Inactivity counts from it.
    ADD COLUMN last_login_at        timestamptz,
    -- When the inactivity warning was sent; a login clears it.
    ADD COLUMN inactivity_warned_at timestamptz,
    ADD CONSTRAINT accounts_closed_check CHECK ((status = 'closed') = (closed_at IS NOT NULL));

-- Accounts active before this migration: their last login from the audit
-- trail, else their activation.
UPDATE accounts a SET last_login_at = coalesce(
    (SELECT max(l.at) FROM audit_log l
     WHERE l.tenant_id = a.tenant_id AND l.action = 'login.ok'
       AND l.object_type = 'account' AND l.object_id = a.id::text),
    a.password_changed_at, a.updated_at)
WHERE a.status = 'active';

-- The daily job looks for active accounts by their last login.
CREATE INDEX accounts_inactive_idx ON accounts (tenant_id, last_login_at) WHERE status = 'active';
-- Retention of messages: a thread goes with its last message.
CREATE INDEX message_threads_retention_idx ON message_threads (last_message_at);
-- Retention of the audit trail.
CREATE INDEX audit_log_retention_idx ON audit_log (at);
