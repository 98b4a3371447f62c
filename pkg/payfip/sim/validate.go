package sim

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"portail/pkg/payfip"
)

// params are the payment parameters as received, before validation. The
// checks are written again here rather than borrowed from package payfip so
// that a mistake in the portal's validation is not mirrored by the simulator.
type params struct {
	NumCli, Exer, RefDet, Montant, Mel, Objet, Saisie string
	URLCl, URLNotif, URLRedirect                      string
}

// violation is one invalid parameter: the fault code the SOAP service
// answers (only R3 and A2 are confirmed on the real server) and a French
// message for the pages.
type violation struct {
	Code    string
	Libelle string
}

// getFold reads a query/form value whatever the case of its name, as the
// real pages accept NUMCLI as well as numcli.
func getFold(v url.Values, name string) string {
	if x, ok := v[name]; ok && len(x) > 0 {
		return strings.TrimSpace(x[0])
	}
	for k, x := range v {
		if strings.EqualFold(k, name) && len(x) > 0 {
			return strings.TrimSpace(x[0])
		}
	}
	return ""
}

func classicParams(v url.Values) params {
	return params{
		NumCli: getFold(v, "numcli"), Exer: getFold(v, "exer"), RefDet: getFold(v, "refdet"),
		Montant: getFold(v, "montant"), Mel: getFold(v, "mel"), Objet: getFold(v, "objet"),
		Saisie: getFold(v, "saisie"), URLCl: getFold(v, "urlcl"),
	}
}

// check returns every violation, in the order the SOAP service reports
// them (it answers the first one only).
func (s *Simulator) check(mode payfip.Mode, p params) []violation {
	var out []violation
	add := func(code, format string, args ...any) {
		out = append(out, violation{Code: code, Libelle: fmt.Sprintf(format, args...)})
	}
	if !digits(p.NumCli, 6) {
		add("C1", "Le numéro de client (NUMCLI) est absent ou incorrect : 6 chiffres sont attendus.")
	}
	if !digits(p.Exer, 4) {
		add("E1", "L'exercice (EXER) est absent ou incorrect : une année sur 4 chiffres est attendue.")
	}
	if !refdetOK(p.RefDet) {
		add(payfip.CodeInvalidRefDet, "Le format du paramètre REFDET n'est pas conforme : 6 à 30 lettres ou chiffres sont attendus.")
	}
	max := s.maxWS
	if mode == payfip.ModeClassic {
		max = s.maxClassic
	}
	if m, err := cents(p.Montant); err != nil {
		add("M1", "Le montant (MONTANT) est absent ou incorrect : un nombre entier de centimes est attendu.")
	} else if m < payfip.MinMontant {
		add("M2", "Le montant (MONTANT) est inférieur au minimum autorisé (%s).", euros(payfip.MinMontant))
	} else if m > max {
		add("M3", "Le montant (MONTANT) dépasse le maximum autorisé (%s).", euros(max))
	}
	if !melOK(p.Mel) {
		add(payfip.CodeInvalidMel, "L'adresse électronique (MEL) est incorrecte : 6 à 80 caractères contenant un @ sont attendus.")
	}
	if !objetOK(p.Objet) {
		add("O1", "L'objet (OBJET) est incorrect : 100 caractères au plus, lettres sans accent, chiffres et espaces.")
	}
	switch mode {
	case payfip.ModeWS:
		if p.Saisie != "T" && p.Saisie != "X" && p.Saisie != "W" {
			add("S1", "Le type de saisie (SAISIE) est incorrect : T, X ou W est attendu.")
		}
		if !urlOK(p.URLNotif) {
			add("U2", "L'adresse de notification (URLNOTIF) est absente ou incorrecte.")
		}
		if !urlOK(p.URLRedirect) {
			add("U3", "L'adresse de retour (URLREDIRECT) est absente ou incorrecte.")
		}
	case payfip.ModeClassic:
		if p.Saisie != "T" && p.Saisie != "X" && p.Saisie != "A" {
			add("S1", "Le type de saisie (SAISIE) est incorrect : T, X ou A est attendu.")
		}
		if !urlOK(p.URLCl) {
			add("U1", "L'adresse de retour (URLCL) est absente ou incorrecte.")
		}
	}
	return out
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
}

func refdetOK(s string) bool {
	if len(s) < 6 || len(s) > 30 {
		return false
	}
	for _, c := range []byte(s) {
		if !alnum(c) {
			return false
		}
	}
	return true
}

func melOK(s string) bool {
	n := len([]rune(s))
	return n >= 6 && n <= 80 && strings.Contains(s, "@") && !strings.ContainsAny(s, " \t\r\n")
}

func objetOK(s string) bool {
	if len(s) > 100 {
		return false
	}
	for _, c := range []byte(s) {
		if !alnum(c) && c != ' ' {
			return false
		}
	}
	return true
}

func urlOK(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func cents(s string) (int64, error) {
	if s == "" || len(s) > 15 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("invalid amount %q", s)
	}
	return strconv.ParseInt(s, 10, 64)
}

// euros formats cents the way the payment page shows them: "243,11 €".
func euros(c int64) string {
	return fmt.Sprintf("%d,%02d €", c/100, c%100)
}
