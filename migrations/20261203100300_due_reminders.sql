-- +goose Up
-- Reminders before the due date. Each commune turns them on and says how
-- many days before the due date they go out; each resident may turn them
-- off ("Mes informations", or the unsubscribe link of any email), apart
-- from the new-invoice alerts.
ALTER TABLE tenants
    ADD COLUMN reminders_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN reminders_days_before integer NOT NULL DEFAULT 5
        CHECK (reminders_days_before BETWEEN 1 AND 60);
ALTER TABLE accounts ADD COLUMN due_reminders boolean NOT NULL DEFAULT true;

-- One reminder per invoice, ever: the row is written in the transaction
-- that enqueues the email, and its key refuses a second one (two instances
-- at once, a rerun after a missed day).
CREATE TABLE invoice_reminders (
    tenant_id    bigint NOT NULL,
    invoice_id   bigint NOT NULL,
    account_id   bigint NOT NULL,
    due_on       date NOT NULL,        -- the due date the reminder announced
    reminded_at  timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id)
);
