-- +goose Up
-- Communes change live, through one service: each write bumps version
-- (optimistic concurrency: an update names the version it was based on)
-- and says who made it; the important notice gains optional dates; and
-- `tenants apply` keeps the values of its last apply per field, to refuse
-- overwriting a field changed elsewhere since (NULL: never applied since
-- this migration; the files were then the only writer and are trusted).
ALTER TABLE tenants
    ADD COLUMN version      bigint NOT NULL DEFAULT 1 CHECK (version >= 1),
    ADD COLUMN updated_by   text NOT NULL DEFAULT '',
    ADD COLUMN notice_from  date,
    ADD COLUMN notice_until date,
    ADD COLUMN last_applied jsonb,
    ADD CONSTRAINT tenants_notice_dates CHECK (notice_until IS NULL OR notice_from IS NULL OR notice_until >= notice_from);

