// Package account is the residents' domain: their accounts of a commune,
// activation, password reset and change, email change, the self-service
// operations of "Mes informations" and "Contact", new-invoice alerts, and
// the requests by address. It is built on pkg/auth (password hashing and
// policy, one-time token secrets, sessions, remember-me, throttling), which
// staff share, and records its events in the audit trail (pkg/audit).
//
// Every operation is scoped by the tenant resolved from the request host:
// functions take a *tenant.Tenant (or its id) and every query filters on
// tenant_id. Writes and the emails they cause are committed in one
// transaction (the email is a River job inserted in that transaction).
// Requests by address ("Oublié ?", activation in neutral mode) only enqueue
// a job, the same for any address, which then finds the account (see
// requests.go): their cost tells nothing about which addresses are known.
package account
