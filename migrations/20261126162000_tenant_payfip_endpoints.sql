-- +goose Up
-- A commune may use other PayFiP endpoints than the platform's (for
-- instance the qualification service while it is being set up); empty means
-- the platform's configured endpoints.
ALTER TABLE tenants
    ADD COLUMN payfip_classic_url     text NOT NULL DEFAULT '',
    ADD COLUMN payfip_ws_payment_url  text NOT NULL DEFAULT '',
    ADD COLUMN payfip_soap_url        text NOT NULL DEFAULT '';
