package auth

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// Password length bounds, in characters (runes). The tenant may raise the
// minimum, never lower it below PasswordFloor.
const (
	PasswordFloor     = 8
	PasswordMaxLength = 128
	// minScore is zxcvbn's score (0–4) a password must reach: below 2 it
	// is in the frequency lists or guessable in under ~10^6 tries.
	minScore = 2
	// minContextWord avoids refusing every password containing "de" or "la".
	minContextWord = 4
)

// PolicyReason says which rule a password broke.
type PolicyReason string

// Reasons of a PolicyError.
const (
	PolicyTooShort PolicyReason = "too_short"
	PolicyTooLong  PolicyReason = "too_long"
	PolicyInvalid  PolicyReason = "invalid"
	PolicyCommon   PolicyReason = "common"
	PolicyContext  PolicyReason = "context"
)

// PolicyError is a refused password; Message is French, fit to show.
type PolicyError struct {
	Reason  PolicyReason
	Message string
}

func (e *PolicyError) Error() string { return "auth: password refused: " + string(e.Reason) }

// CheckPassword applies the password policy: between max(minLen, 8) and 128
// characters, not common, not containing a context word (commune name,
// email, email local part). It never changes the password (no trimming, no
// case folding) and has no composition rules.
func CheckPassword(pw string, minLen int, contextWords ...string) error {
	// Before anything else: a huge input must not reach zxcvbn or argon2.
	if len(pw) > MaxPasswordBytes {
		return &PolicyError{PolicyTooLong, fmt.Sprintf("Le mot de passe ne doit pas dépasser %d caractères.", PasswordMaxLength)}
	}
	if !utf8.ValidString(pw) || strings.ContainsRune(pw, 0) {
		return &PolicyError{PolicyInvalid, "Le mot de passe contient des caractères non valides."}
	}
	minLen = max(minLen, PasswordFloor)
	n := utf8.RuneCountInString(pw)
	if n < minLen {
		return &PolicyError{PolicyTooShort, fmt.Sprintf("Le mot de passe doit contenir au moins %d caractères.", minLen)}
	}
	if n > PasswordMaxLength {
		return &PolicyError{PolicyTooLong, fmt.Sprintf("Le mot de passe ne doit pas dépasser %d caractères.", PasswordMaxLength)}
	}
	folded := fold(pw)
	words := contextTerms(contextWords)
	for _, w := range words {
		if folded == w || (utf8.RuneCountInString(w) >= minContextWord && strings.Contains(folded, w)) {
			return &PolicyError{PolicyContext, "Le mot de passe ne doit contenir ni le nom de la commune, ni votre adresse mail ou une partie de celle-ci."}
		}
	}
	inputs := append(words, frenchCommonPasswords()...)
	if zxcvbn.PasswordStrength(pw, inputs).Score < minScore {
		return &PolicyError{PolicyCommon, "Ce mot de passe est trop courant ou trop facile à deviner. Choisissez-en un autre, par exemple une phrase de plusieurs mots."}
	}
	return nil
}

// Strength is zxcvbn's score from 0 (very weak) to 4 (very strong), for a
// hint next to the password field. Out-of-bounds passwords score 0.
func Strength(pw string) int {
	if len(pw) > MaxPasswordBytes || utf8.RuneCountInString(pw) > PasswordMaxLength {
		return 0
	}
	return zxcvbn.PasswordStrength(pw, frenchCommonPasswords()).Score
}

// fold lowercases and strips accents, for comparisons only.
func fold(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.ToLower(out)
}

// contextTerms expands the context words: each whole word, an email's local
// part, and their significant pieces ("MAIRIE DE SISTEC" → "sistec";
// "jean.dupont@x.fr" → "jean.dupont", "jean", "dupont").
func contextTerms(words []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(w string) {
		w = strings.TrimSpace(w)
		if w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	for _, w := range words {
		w = fold(w)
		add(w)
		if at := strings.LastIndexByte(w, '@'); at > 0 {
			add(w[:at])
			w = w[:at] // the domain (gmail, orange…) is not personal
		}
		for _, piece := range strings.FieldsFunc(w, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			if utf8.RuneCountInString(piece) >= minContextWord && !genericWord(piece) {
				add(piece)
			}
		}
	}
	return out
}

// genericWord are the words of commune names that are not the commune.
func genericWord(w string) bool {
	switch w {
	case "mairie", "commune", "ville", "communaute", "agglomeration", "syndicat",
		"intercommunal", "saint", "sainte", "service", "services", "regie":
		return true
	}
	return false
}

// frenchCommonPasswords complements zxcvbn's (mostly English) lists with
// passwords frequent in France; zxcvbn ranks them like a dictionary.
func frenchCommonPasswords() []string {
	return []string{
		"azerty", "azertyuiop", "azerty123", "motdepasse", "soleil", "bonjour",
		"doudou", "loulou", "chouchou", "coucou", "marseille", "toulouse",
		"nicolas", "camille", "julien", "thomas", "olivier", "nathalie",
		"isabelle", "sandrine", "stephanie", "celine", "aurelie", "amandine",
		"chocolat", "vacances", "bisous", "jetaime", "jesus", "princesse",
		"tintin", "pompier", "football", "liberte", "france", "paris",
		"bretagne", "portail", "factures", "facture", "cantine", "mairie",
	}
}
