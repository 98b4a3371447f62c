-- +goose Up
-- One audit trail for every writer: each row names what it is about (an
-- invoice, a payment, an account, a staff user, an import batch…) so that an
-- object's history is one indexed read, and API keys act under their own
-- actor kind.
ALTER TABLE audit_log
    ADD COLUMN object_type text NOT NULL DEFAULT '',
    ADD COLUMN object_id   text NOT NULL DEFAULT '';
ALTER TABLE audit_log DROP CONSTRAINT audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check
    CHECK (actor_kind IN ('anonymous', 'resident', 'staff', 'operator', 'api_key', 'system'));
CREATE INDEX audit_log_object_idx ON audit_log (tenant_id, object_type, object_id, at DESC);
