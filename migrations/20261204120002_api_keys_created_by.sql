-- +goose Up
-- Who created an API key from the back office (NULL: the command line).
ALTER TABLE api_keys ADD COLUMN created_by bigint REFERENCES staff_users (id);
