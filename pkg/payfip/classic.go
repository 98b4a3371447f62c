package payfip

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ClassicURL builds the browser URL that starts a classic (TIPI Régie)
// payment: base (e.g. https://www.payfip.gouv.fr/tpa/paiement.web) plus the
// parameters of r. r is checked against PayFiP's own rules with the absolute
// ceiling MaxMontant; the tenant's cap is the caller's business (Validate).
func ClassicURL(base string, r Request) (string, error) {
	if err := r.Validate(ModeClassic, MaxMontant); err != nil {
		return "", err
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("payfip: invalid classic base URL %q", base)
	}
	q := u.Query()
	q.Set("numcli", r.NumCli)
	q.Set("exer", r.Exer)
	q.Set("refdet", r.RefDet)
	q.Set("montant", strconv.FormatInt(r.Montant, 10))
	q.Set("mel", r.Mel)
	if r.Objet != "" {
		q.Set("objet", r.Objet)
	}
	q.Set("urlcl", r.URLCl)
	q.Set("saisie", r.Saisie)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// ParseClassicCallback reads the parameters PayFiP sends to urlcl (query
// string or form body). Names are matched case-insensitively because real
// deployments send REFDET as well as refdet. The result is unsigned: it is
// only as good as its match with a stored pending attempt.
func ParseClassicCallback(values url.Values) (Result, error) {
	var res Result
	var errs []error
	get := func(name string, required bool) string {
		v, err := lookupFold(values, name)
		if err != nil {
			errs = append(errs, err)
			return ""
		}
		if v == "" && required {
			errs = append(errs, fmt.Errorf("payfip: callback: missing %s", name))
		}
		return v
	}
	res.ResultTrans = get("resultrans", true)
	res.NumCli = get("numcli", true)
	res.RefDet = get("refdet", true)
	montant := get("montant", true)
	res.NumAuto = get("numauto", false)
	res.DatTrans = get("dattrans", false)
	res.HeurTrans = get("heurtrans", false)
	res.Exer = get("exer", false)
	res.Mel = get("mel", false)
	res.Objet = get("objet", false)
	res.Saisie = get("saisie", false)
	res.IdOp = get("idop", false)

	if res.NumCli != "" && !isDigits(res.NumCli, 6) {
		errs = append(errs, fmt.Errorf("payfip: callback: invalid numcli %q", res.NumCli))
	}
	if res.RefDet != "" && !ValidRefDet(res.RefDet) {
		errs = append(errs, fmt.Errorf("payfip: callback: invalid refdet %q", res.RefDet))
	}
	if montant != "" {
		m, err := parseCents(montant)
		if err != nil {
			errs = append(errs, fmt.Errorf("payfip: callback: %w", err))
		}
		res.Montant = m
	}
	return res, errors.Join(errs...)
}

// ClassicRefDet is the refdet named by urlcl's parameters (any case), or
// "" when it is missing, given twice with different values, or invalid.
func ClassicRefDet(values url.Values) string {
	v, err := lookupFold(values, "refdet")
	if err != nil || !ValidRefDet(v) {
		return ""
	}
	return v
}

// lookupFold returns the value of name, matched case-insensitively. Several
// spellings carrying different values are refused: which one would be true?
func lookupFold(values url.Values, name string) (string, error) {
	var found string
	seen := false
	for k, vs := range values {
		if !strings.EqualFold(k, name) {
			continue
		}
		for _, v := range vs {
			v = strings.TrimSpace(v)
			if seen && v != found {
				return "", fmt.Errorf("payfip: conflicting values for %s", name)
			}
			found, seen = v, true
		}
	}
	return found, nil
}

// parseCents parses a non-negative integer amount in cents.
func parseCents(s string) (int64, error) {
	if s == "" || len(s) > 15 {
		return 0, fmt.Errorf("invalid montant %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("invalid montant %q", s)
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid montant %q", s)
	}
	return n, nil
}
