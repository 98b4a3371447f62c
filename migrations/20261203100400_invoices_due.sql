-- +goose NO TRANSACTION
-- +goose Up
-- The daily reminder job: a commune's unpaid invoices by due date. Unpaid
-- invoices are few beside paid ones, so the index stays small. Built
-- concurrently: invoices keep being imported meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_unpaid_due
    ON invoices (tenant_id, due_on, account_id) WHERE status = 'unpaid';
