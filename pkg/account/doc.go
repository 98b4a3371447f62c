// Package account holds the residents' accounts of a commune: passwords
// (argon2id, policy), one-time tokens (activation, reset, email change),
// server-side sessions, remember-me cookies, login throttling, the
// self-service operations of "Mes informations" and "Contact", the audit log
// of authentication events, and the payers import from the billing software.
//
// Every operation is scoped by the tenant resolved from the request host:
// functions take a *tenant.Tenant (or its id) and every query filters on
// tenant_id. Writes and the emails they cause are committed in one
// transaction (the email is a River job inserted in that transaction).
// Requests by address ("Oublié ?", activation in neutral mode) only enqueue
// a job, the same for any address, which then finds the account (see
// requests.go): their cost tells nothing about which addresses are known.
package account
