// Package auth holds the authentication pieces every kind of principal
// (residents, commune staff, later operators) builds on: password hashing
// and policy, one-time token secrets, server-side sessions, remember-me
// cookies, login throttling and rate limits.
//
// Each principal keeps its own tables (account_tokens and staff_tokens,
// sessions and staff_sessions…): the code is shared, not the rows. Table
// and column names given to the stores are code constants, never input.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors shared by the principals' packages, which callers match.
var (
	ErrSessionNotFound  = errors.New("auth: session not found or expired")
	ErrRememberInvalid  = errors.New("auth: remember-me cookie invalid or expired")
	ErrRememberReplayed = errors.New("auth: remember-me validator replayed; all remember-me tokens revoked")
)

// ThrottledError refuses a login attempt for RetryAfter.
type ThrottledError struct {
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("auth: too many login failures, retry after %s", e.RetryAfter.Round(time.Second))
}

// TokenBytes gives 256-bit one-time tokens and session ids (the floor is 128).
const TokenBytes = 32

// NewSecret returns n random bytes as base64url without padding.
func NewSecret(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("auth: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// NewToken returns a one-time token for an emailed link and the SHA-256 to
// store in its place.
func NewToken() (raw string, hash []byte, err error) {
	raw, err = NewSecret(TokenBytes)
	if err != nil {
		return "", nil, err
	}
	return raw, Hash(raw), nil
}

// WellFormed tells whether raw can be a secret of n bytes made by
// NewSecret: garbage is rejected before it reaches the database.
func WellFormed(raw string, n int) bool {
	if len(raw) != base64.RawURLEncoding.EncodedLen(n) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(raw)
	return err == nil
}

// Hash is the SHA-256 under which a secret is stored.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// NormalizeEmail trims and lowercases an address: logins are
// case-insensitive and stored lowercase.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// ValidEmail tells whether s (already normalized) is a plain address
// "local@domain.tld" that we can send to.
func ValidEmail(s string) bool {
	if len(s) < 3 || len(s) > 254 || !utf8.ValidString(s) {
		return false
	}
	if strings.ContainsAny(s, " \t\r\n<>()[],;:\\\"") {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at < 1 || at > 64 || strings.Count(s, "@") != 1 {
		return false
	}
	domain := s[at+1:]
	if !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") ||
		strings.Contains(domain, "..") {
		return false
	}
	for _, label := range strings.Split(domain, ".") {
		if label == "" || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
	}
	// net/mail must read it back as the same bare address.
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s
}

// Clock truncates now to PostgreSQL's precision (microseconds, rounded on
// store): otherwise a row written with now can compare as a fraction of a
// microsecond in the future when read back.
func Clock(now func() time.Time) time.Time {
	if now != nil {
		return now().Truncate(time.Microsecond)
	}
	return time.Now().Truncate(time.Microsecond)
}
