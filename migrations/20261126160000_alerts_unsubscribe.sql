-- +goose Up
-- Every alert email carries a link that stops alerts without logging in.
-- gen_random_uuid() gives 122 random bits; the link only ever turns alerts off.
ALTER TABLE accounts ADD COLUMN unsubscribe_token text NOT NULL DEFAULT replace(gen_random_uuid()::text, '-', '');
CREATE UNIQUE INDEX accounts_unsubscribe_idx ON accounts (tenant_id, unsubscribe_token);
