// Package payfip speaks PayFiP (formerly TIPI), the DGFiP's payment service
// for local public revenue, in its two modes: classic ("TIPI Régie", a browser
// GET and an unsigned callback) and web-service (SOAP creerPaiementSecurise,
// notification, then recupererDetailPaiementSecurise for the truth).
//
// The package holds no state: base URLs, caps and HTTP clients are passed in.
package payfip

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"portail/pkg/paris"
)

// Mode is how a tenant talks to PayFiP.
type Mode string

const (
	// ModeWS is the web-service mode (recommended): the result is fetched
	// server to server.
	ModeWS Mode = "ws"
	// ModeClassic is the historical TIPI mode: the result comes back unsigned
	// on urlcl.
	ModeClassic Mode = "classic"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeWS || m == ModeClassic }

// ParseMode parses "ws" or "classic".
func ParseMode(s string) (Mode, error) {
	m := Mode(strings.ToLower(strings.TrimSpace(s)))
	if !m.Valid() {
		return "", fmt.Errorf("payfip: unknown mode %q (want %q or %q)", s, ModeWS, ModeClassic)
	}
	return m, nil
}

// Amount limits, in cents.
const (
	// MinMontant is PayFiP's minimum (1 €).
	MinMontant int64 = 100
	// MaxMontant is PayFiP's ceiling in WS mode (100 000 €); no request may
	// exceed it whatever the tenant setting.
	MaxMontant int64 = 10_000_000
	// DefaultClassicMaxMontant is the cap classic clients apply (9 999,99 €);
	// tenants may configure another one.
	DefaultClassicMaxMontant int64 = 999_999
)

// Saisie values.
const (
	SaisieTest              = "T"
	SaisieActivation        = "X"
	SaisieProductionWS      = "W"
	SaisieProductionClassic = "A"
)

// Resultrans values.
const (
	ResultCardPaid     = "P"
	ResultDebitPaid    = "V"
	ResultCardRefused  = "R"
	ResultDebitRefused = "Z"
	ResultAbandoned    = "A"
)

// Outcome is what a resultrans means to the portal.
type Outcome string

const (
	OutcomePaid      Outcome = "paid"
	OutcomeRefused   Outcome = "refused"
	OutcomeCancelled Outcome = "cancelled"
	OutcomeError     Outcome = "error"
)

// Result is a payment result, from the classic callback or from
// recupererDetailPaiementSecurise. Montant is in cents.
type Result struct {
	ResultTrans string
	NumAuto     string
	DatTrans    string // DDMMYYYY, Europe/Paris
	HeurTrans   string // HHMM, Europe/Paris
	IdOp        string // WS mode only
	NumCli      string
	Exer        string
	RefDet      string
	Montant     int64
	Mel         string
	Objet       string
	Saisie      string
}

// Outcome maps resultrans as eopayment does: P,V paid; R,Z refused;
// A cancelled; anything else is an error.
func (r Result) Outcome() Outcome {
	switch r.ResultTrans {
	case ResultCardPaid, ResultDebitPaid:
		return OutcomePaid
	case ResultCardRefused, ResultDebitRefused:
		return OutcomeRefused
	case ResultAbandoned:
		return OutcomeCancelled
	default:
		return OutcomeError
	}
}

// PaidAt is the transaction time (dattrans + heurtrans, Europe/Paris).
func (r Result) PaidAt() (time.Time, error) {
	loc := paris.Location
	if !isDigits(r.DatTrans, 8) || !isDigits(r.HeurTrans, 4) {
		return time.Time{}, fmt.Errorf("payfip: invalid dattrans/heurtrans %q %q", r.DatTrans, r.HeurTrans)
	}
	t, err := time.ParseInLocation("020120061504", r.DatTrans+r.HeurTrans, loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("payfip: invalid dattrans/heurtrans %q %q: %w", r.DatTrans, r.HeurTrans, err)
	}
	return t, nil
}

// Request is what the portal sends to start a payment. Montant is in cents.
// URLCl is used in classic mode, URLNotif and URLRedirect in WS mode.
type Request struct {
	NumCli      string
	Exer        string
	RefDet      string
	Montant     int64
	Mel         string
	Objet       string // pass it through SanitizeObjet first
	Saisie      string
	URLCl       string
	URLNotif    string
	URLRedirect string
}

// FieldError says which parameter is wrong and why.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "payfip: invalid " + e.Field + ": " + e.Reason }

// Validate checks every rule PayFiP enforces for mode, with
// maxMontant as the amount cap in cents (the tenant setting). A cap of 0 or
// above MaxMontant means MaxMontant. All violations are joined; each is a
// *FieldError.
func (r Request) Validate(mode Mode, maxMontant int64) error {
	if maxMontant <= 0 || maxMontant > MaxMontant {
		maxMontant = MaxMontant
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if !mode.Valid() {
		bad("mode", "unknown mode %q", mode)
	}
	if !isDigits(r.NumCli, 6) {
		bad("numcli", "want exactly 6 digits, got %q", r.NumCli)
	}
	if !isDigits(r.Exer, 4) {
		bad("exer", "want a 4-digit year, got %q", r.Exer)
	}
	if !ValidRefDet(r.RefDet) {
		bad("refdet", "want 6 to 30 letters or digits, got %q", r.RefDet)
	}
	if r.Montant < MinMontant {
		bad("montant", "%d cents is below the minimum of %d", r.Montant, MinMontant)
	} else if r.Montant > maxMontant {
		bad("montant", "%d cents is above the maximum of %d", r.Montant, maxMontant)
	}
	if !ValidMel(r.Mel) {
		bad("mel", "want 6 to 80 characters with an @, got %q", r.Mel)
	}
	if !validObjet(r.Objet) {
		bad("objet", "want at most 100 characters among A-Z a-z 0-9 and space (use SanitizeObjet)")
	}
	switch mode {
	case ModeWS:
		if r.Saisie != SaisieTest && r.Saisie != SaisieActivation && r.Saisie != SaisieProductionWS {
			bad("saisie", "want T, X or W in WS mode, got %q", r.Saisie)
		}
		if err := checkURL(r.URLNotif); err != nil {
			bad("urlnotif", "%v", err)
		}
		if err := checkURL(r.URLRedirect); err != nil {
			bad("urlredirect", "%v", err)
		}
	case ModeClassic:
		if r.Saisie != SaisieTest && r.Saisie != SaisieActivation && r.Saisie != SaisieProductionClassic {
			bad("saisie", "want T, X or A in classic mode, got %q", r.Saisie)
		}
		if err := checkURL(r.URLCl); err != nil {
			bad("urlcl", "%v", err)
		}
	}
	return errors.Join(errs...)
}

// ValidRefDet reports whether s matches ^[A-Za-z0-9]{6,30}$.
func ValidRefDet(s string) bool {
	if len(s) < 6 || len(s) > 30 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// ValidMel reports whether s is acceptable as PayFiP's mel: 6 to 80
// characters with an @ (and, our addition, no spaces or control characters).
func ValidMel(s string) bool {
	n := 0
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return false
		}
		n++
	}
	return n >= 6 && n <= 80 && strings.Contains(s, "@")
}

func validObjet(s string) bool {
	if len(s) > 100 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != ' ' {
			return false
		}
	}
	return true
}

func checkURL(s string) error {
	if s == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an absolute http(s) URL, got %q", s)
	}
	return nil
}

// SanitizeObjet turns free text into what PayFiP accepts for objet: accents
// stripped, ' and - turned into spaces, anything else outside [A-Za-z0-9 ]
// dropped, spaces collapsed, at most 100 characters.
func SanitizeObjet(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c < 0x80 && isAlnum(byte(c)):
			b.WriteRune(c)
		case c == '\'' || c == '-' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
			c == 0xa0 || c == 0x202f || c == 0x2019 || c == 0x2018 || c == 0x2010 ||
			c == 0x2011 || c == 0x2013 || c == 0x2014:
			// typographic apostrophes, dashes and no-break spaces count as ' - and space
			b.WriteByte(' ')
		default:
			b.WriteString(foldAccent(c))
		}
	}
	out := strings.Join(strings.Fields(b.String()), " ")
	if len(out) > 100 {
		out = strings.TrimRight(out[:100], " ")
	}
	return out
}

// ligatures are the letters that Unicode decomposition does not split.
var ligatures = strings.NewReplacer("œ", "oe", "Œ", "OE", "æ", "ae", "Æ", "AE", "ß", "ss", "ø", "o", "Ø", "O", "đ", "d", "Đ", "D", "ł", "l", "Ł", "L")

// foldAccent maps a letter with diacritics to its ASCII base letters
// (decomposition, then combining marks removed); it returns "" for anything
// else, which is then dropped.
func foldAccent(c rune) string {
	folded, _, err := transform.String(transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn))), ligatures.Replace(string(c)))
	if err != nil {
		return ""
	}
	var b strings.Builder
	for _, r := range folded {
		if r < 0x80 && isAlnum(byte(r)) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// NewRefDet returns a fresh payment reference for one attempt: 26 random
// characters from [A-Z2-7] (130 bits from crypto/rand), so it never repeats.
func NewRefDet() string {
	return rand.Text()
}

func isAlnum(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
