-- +goose NO TRANSACTION
-- +goose Up
-- The staff's dashboard: amounts paid by month (Paris) over a year, and the
-- amount sent to the treasury, each read from a small partial index instead
-- of the commune's whole invoice table. Built concurrently: invoices and
-- payments keep coming meanwhile.
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_paid_at
    ON invoices (tenant_id, paid_at) INCLUDE (amount_cents) WHERE status = 'paid';
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_treasury
    ON invoices (tenant_id) INCLUDE (amount_cents) WHERE status = 'treasury';
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_paid_at
    ON payments (tenant_id, paid_at) INCLUDE (amount_cents) WHERE status = 'paid';
