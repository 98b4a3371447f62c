-- +goose NO TRANSACTION
-- +goose Up
-- The payment selection page: an account's open invoices (unpaid, neither
-- direct debit nor suspended), most recent first, counted and paged from the
-- index alone (amount_cents is there for the commune's amount limits). Open
-- invoices are few once paid ones leave, so the index stays small; a
-- resident with 10,000 unpaid ones is still counted without reading them.
-- Built concurrently: invoices keep being imported meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_account_open
    ON invoices (tenant_id, account_id, issued_on DESC, id DESC) INCLUDE (amount_cents)
    WHERE status = 'unpaid' AND NOT direct_debit AND NOT payment_suspended;
