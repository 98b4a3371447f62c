-- +goose Up
-- A commune with its own PayFiP endpoints may name the networks its PayFiP
-- calls back from (classic mode); empty means the deployment's
-- payfip.callback_networks.
ALTER TABLE tenants
    ADD COLUMN payfip_callback_networks text[] NOT NULL DEFAULT '{}';
