package invoice

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldError is a value of an import file that cannot be accepted. Reason is
// French: it is shown to commune staff in the import report.
type FieldError struct {
	Reason string
}

func (e *FieldError) Error() string { return "invoice: " + e.Reason }

func fieldErr(format string, args ...any) error {
	return &FieldError{Reason: fmt.Sprintf(format, args...)}
}

// MaxAmountCents is the largest amount accepted (999 999 999,99 €): a sanity
// bound far above any commune invoice that keeps sums away from overflow.
const MaxAmountCents = 100_000_000_000 - 1

// quoted shows a bad input in a report, cut so a huge cell cannot bloat it.
func quoted(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return "« " + strings.ToValidUTF8(s, "\uFFFD") + " »"
}

func isGroupSpace(r rune) bool { return r == ' ' || r == '\u00a0' || r == '\u202f' }

// ParseAmount reads a euro amount as written by French billing software and
// returns it in cents: "243,11", "243,1", "243", "1 234,56" (normal, non-breaking
// or narrow non-breaking spaces, or dots, as thousands separators), with an
// optional "€". A decimal point is accepted only where it cannot be a thousands
// separator ("243.11", "243.1", "1 234.56"); "1.234" is refused as ambiguous, and
// so are three decimals ("1,234" could be an English thousand). A leading "-"
// gives a negative amount, which the import refuses with its own message.
func ParseAmount(s string) (int64, error) {
	raw := s
	s = strings.TrimSpace(s)
	if t, ok := strings.CutSuffix(s, "€"); ok {
		s = strings.TrimSpace(t)
	}
	if s == "" {
		return 0, fieldErr("Montant vide")
	}
	neg := false
	if s[0] == '-' {
		neg = true
		s = strings.TrimLeftFunc(s[1:], isGroupSpace)
	}
	invalid := func() (int64, error) { return 0, fieldErr("Montant invalide %s", quoted(raw)) }
	intPart, frac, hasFrac := s, "", false
	groupDot := false // may dots group thousands in intPart?
	commas, dots := strings.Count(s, ","), strings.Count(s, ".")
	switch {
	case commas > 1:
		return invalid()
	case commas == 1:
		intPart, frac, _ = strings.Cut(s, ",")
		hasFrac = true
		groupDot = true
	case dots == 1:
		intPart, frac, _ = strings.Cut(s, ".")
		hasFrac = true
		if len(frac) == 3 && isDigits(frac) {
			return 0, fieldErr("Montant ambigu %s : utilisez la virgule comme séparateur décimal (exemple : 1234,00)", quoted(raw))
		}
	case dots > 1:
		groupDot = true
	}
	if hasFrac {
		if frac == "" || !isDigits(frac) {
			return invalid()
		}
		if len(frac) > 2 {
			return 0, fieldErr("Montant invalide %s : plus de deux décimales", quoted(raw))
		}
	}
	digits, ok := ungroup(intPart, groupDot)
	if !ok {
		return invalid()
	}
	digits = strings.TrimLeft(digits, "0")
	if len(digits) > 9 {
		return 0, fieldErr("Montant trop élevé %s", quoted(raw))
	}
	var euros int64
	if digits != "" {
		euros, _ = strconv.ParseInt(digits, 10, 64) // at most 9 digits: cannot fail
	}
	var cents int64
	if frac != "" {
		c, _ := strconv.ParseInt(frac, 10, 64)
		if len(frac) == 1 {
			c *= 10
		}
		cents = c
	}
	v := euros*100 + cents
	if neg {
		v = -v
	}
	return v, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// ungroup removes thousands separators from s, checking that groups are
// well formed (1 to 3 digits, then groups of exactly 3, one kind of separator).
func ungroup(s string, dotAllowed bool) (string, bool) {
	if s == "" {
		return "", false
	}
	var groups []string
	sep := rune(0)
	start := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			continue
		case isGroupSpace(r) || (r == '.' && dotAllowed):
			kind := r
			if isGroupSpace(r) {
				kind = ' '
			}
			if sep != 0 && sep != kind {
				return "", false
			}
			sep = kind
			groups = append(groups, s[start:i])
			start = i + utf8.RuneLen(r)
		default:
			return "", false
		}
	}
	if sep == 0 {
		return s, true
	}
	groups = append(groups, s[start:])
	for i, g := range groups {
		if !isDigits(g) || len(g) > 3 || (i > 0 && len(g) != 3) {
			return "", false
		}
	}
	return strings.Join(groups, ""), true
}

// FormatAmount writes cents the French way, "1 234,56 €", with normal spaces
// (one between thousands groups, one before the euro sign).
func FormatAmount(cents int64) string {
	neg := cents < 0
	u := uint64(cents)
	if neg {
		u = -u // two's complement: correct even for the smallest int64
	}
	euros := strconv.FormatUint(u/100, 10)
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	for i := 0; i < len(euros); i++ {
		if i > 0 && (len(euros)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteByte(euros[i])
	}
	fmt.Fprintf(&b, ",%02d €", u%100)
	return b.String()
}

// ParseDate reads a JJ/MM/AAAA date strictly (two-digit day and month,
// four-digit year between 1900 and 2199, a day that exists) and returns it at
// midnight UTC.
func ParseDate(s string) (time.Time, error) {
	raw := s
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fieldErr("Date vide")
	}
	if len(s) != 10 || s[2] != '/' || s[5] != '/' || !isDigits(s[0:2]) || !isDigits(s[3:5]) || !isDigits(s[6:10]) {
		return time.Time{}, fieldErr("Date invalide %s : format attendu JJ/MM/AAAA", quoted(raw))
	}
	d, _ := strconv.Atoi(s[0:2])
	m, _ := strconv.Atoi(s[3:5])
	y, _ := strconv.Atoi(s[6:10])
	if y < 1900 || y > 2199 {
		return time.Time{}, fieldErr("Date invalide %s : année hors limites", quoted(raw))
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if m < 1 || m > 12 || d < 1 || t.Day() != d || t.Month() != time.Month(m) {
		return time.Time{}, fieldErr("Date inexistante %s", quoted(raw))
	}
	return t, nil
}

// FormatDate writes a date as JJ/MM/AAAA ("" for the zero time).
func FormatDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format("02/01/2006")
}

// ValidNumber tells whether s can be an invoice number: letters, digits,
// '-', '_' and '.', at most 64 characters, starting with a letter or digit.
// Numbers appear in object-store keys, ZIP entry names and payment references,
// so nothing else is accepted.
func ValidNumber(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '-' || c == '_' || c == '.') && i > 0:
		default:
			return false
		}
	}
	return true
}
