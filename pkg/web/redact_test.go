package web

import "testing"

func TestTokenPathsAreRedactedInLogs(t *testing.T) {
	for in, want := range map[string]string{
		"/activation/aBqfAi60sa_l0F5UvEL0Sxju3yKKSBE21rkChP2j7TE": "/activation/[token]",
		"/mot-de-passe/secret": "/mot-de-passe/[token]",
		"/adresse/secret":      "/adresse/[token]",
		"/desabonnement/0123456789abcdef0123456789abcdef": "/desabonnement/[token]",
		"/activation":  "/activation",
		"/factures/12": "/factures/12",
	} {
		if got := redactPath(in); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
}
