-- +goose Up
-- Imports become jobs. A batch row is written when a file is uploaded
-- (status queued, its files staged in S3), the import job then records its
-- stage and progress on it, and finally its outcome: imported, rejected,
-- duplicate (the same file was imported before: nothing changed) or failed
-- (every retry failed: nothing changed). Payers files get batches too.
ALTER TABLE import_batches DROP CONSTRAINT import_batches_kind_check;
ALTER TABLE import_batches ADD CONSTRAINT import_batches_kind_check
    CHECK (kind IN ('payers', 'invoices'));
ALTER TABLE import_batches DROP CONSTRAINT import_batches_status_check;
ALTER TABLE import_batches ADD CONSTRAINT import_batches_status_check
    CHECK (status IN ('queued', 'running', 'imported', 'rejected', 'duplicate', 'failed'));
-- file_sha256 is the batch's identity (the CSV's SHA-256, or a SHA-256 over
-- it and the ZIP's entries); '' when there is none: a single line sent
-- through the API, or a file refused before it was read through.
-- (It referenced status too: PostgreSQL named it after the table alone.)
ALTER TABLE import_batches DROP CONSTRAINT import_batches_check;
ALTER TABLE import_batches ADD CONSTRAINT import_batches_file_sha256_check
    CHECK (file_sha256 = '' OR file_sha256 ~ '^[0-9a-f]{64}$');
DROP INDEX import_batches_file_once;
-- One import per identity: of two uploads of the same file, one applies and
-- the other ends as a duplicate.
CREATE UNIQUE INDEX import_batches_file_once ON import_batches (tenant_id, kind, file_sha256)
    WHERE status = 'imported' AND file_sha256 <> '';

ALTER TABLE import_batches
    ALTER COLUMN started_at DROP NOT NULL,
    ALTER COLUMN finished_at DROP NOT NULL,
    ADD COLUMN created_at   timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at   timestamptz NOT NULL DEFAULT now(),
    -- What the job is doing, for the uploader's progress bar.
    ADD COLUMN stage        text NOT NULL DEFAULT 'done'
        CHECK (stage IN ('queued', 'reading', 'checking', 'pdfs', 'uploading', 'applying', 'done')),
    -- Lines of the file (an estimate when cells span lines) and lines read.
    ADD COLUMN lines_total  integer NOT NULL DEFAULT 0 CHECK (lines_total >= 0),
    ADD COLUMN lines_done   integer NOT NULL DEFAULT 0 CHECK (lines_done >= 0),
    -- Payers: lines imported with a remark.
    ADD COLUMN notes        integer NOT NULL DEFAULT 0 CHECK (notes >= 0),
    -- Who uploaded it (a later audit trail shows it).
    ADD COLUMN actor_kind   text NOT NULL DEFAULT 'system'
        CHECK (actor_kind IN ('system', 'cli', 'api_key', 'staff')),
    ADD COLUMN actor_id     bigint,
    -- The uploaded files, staged under t/<tenant>/imports/<batch>/.
    ADD COLUMN csv_key      text NOT NULL DEFAULT '',
    ADD COLUMN csv_sha256   text NOT NULL DEFAULT '' CHECK (csv_sha256 = '' OR csv_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN csv_size     bigint NOT NULL DEFAULT 0 CHECK (csv_size >= 0),
    ADD COLUMN zip_key      text NOT NULL DEFAULT '',
    ADD COLUMN zip_sha256   text NOT NULL DEFAULT '' CHECK (zip_sha256 = '' OR zip_sha256 ~ '^[0-9a-f]{64}$'),
    ADD COLUMN zip_size     bigint NOT NULL DEFAULT 0 CHECK (zip_size >= 0),
    ADD COLUMN zip_filename text NOT NULL DEFAULT '',
    -- A duplicate names the batch that imported the same file.
    ADD COLUMN duplicate_of bigint,
    ADD COLUMN attempts     integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    -- Why the last attempt failed (French, for staff); '' otherwise.
    ADD COLUMN error        text NOT NULL DEFAULT '';
UPDATE import_batches SET created_at = started_at, updated_at = finished_at,
    lines_total = lines, lines_done = lines;
ALTER TABLE import_batches ADD CONSTRAINT import_batches_finished_check
    CHECK ((status IN ('queued', 'running')) = (finished_at IS NULL));
DROP INDEX import_batches_recent;
CREATE INDEX import_batches_recent ON import_batches (tenant_id, created_at DESC, id DESC);

-- Payers imports also list lines imported with a remark.
ALTER TABLE import_errors ADD COLUMN severity text NOT NULL DEFAULT 'error'
    CHECK (severity IN ('error', 'note'));
