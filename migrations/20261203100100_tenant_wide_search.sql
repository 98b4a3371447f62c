-- +goose Up
-- Tenant-wide searches of the staff screens. A payer is found by its
-- reference, name or email, whatever the case and accents, by any part of
-- them ("dupont" finds "Jean DUPONT", "SISTEC56" finds "SISTEC560"): a
-- trigram index over the folded text, with tenant_id first (btree_gin)
-- so that each search stays within its commune. The three extensions are
-- trusted ones: a database owner may create them.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE EXTENSION IF NOT EXISTS btree_gin;

-- portail_fold lowercases and strips accents. unaccent() is only STABLE
-- (its dictionary could change); naming the dictionary makes the result
-- fixed, which an index expression needs.
-- +goose StatementBegin
CREATE FUNCTION portail_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;
-- +goose StatementEnd

CREATE INDEX accounts_search ON accounts
    USING gin (tenant_id, portail_fold(external_ref || ' ' || display_name || ' ' || email) gin_trgm_ops);

-- A commune's invoices and payments, most recent first (the residents' own
-- lists have their per-account indexes).
CREATE INDEX invoices_commune_issued ON invoices (tenant_id, issued_on DESC, id DESC);
CREATE INDEX payments_commune_created ON payments (tenant_id, created_at DESC, id DESC);
