package account

import "portail/pkg/auth"

// NormalizeEmail trims and lowercases an address: logins are
// case-insensitive and stored lowercase.
func NormalizeEmail(s string) string { return auth.NormalizeEmail(s) }

// ValidEmail tells whether s (already normalized) is a plain address
// "local@domain.tld" that we can send to.
func ValidEmail(s string) bool { return auth.ValidEmail(s) }
