package tenant

import (
	"net"
	"strings"
)

// NormalizeHost lowercases a Host header value and strips its port and
// trailing dot, so "SISTEC.localhost.:8080" matches "sistec.localhost".
func NormalizeHost(h string) string {
	h = strings.TrimSpace(h)
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	return strings.ToLower(h)
}
