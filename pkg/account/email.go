package account

import (
	"net/mail"
	"strings"
	"unicode/utf8"
)

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
