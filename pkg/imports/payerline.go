package imports

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"portail/pkg/account"
)

// PayerLine is one payer (a resident's account) as the billing software
// sends it, typed: from the payers file or from the API's JSON.
type PayerLine struct {
	Line  int // in the file (the header is line 1); 0 for a single API write
	Ref   string
	Name  string
	Email string
}

// Payers limits.
const (
	maxRefRunes  = 64
	maxNameRunes = 200
)

// Check normalises the line (trimmed reference, collapsed name, lowercase
// address) and tells, in French, why it cannot be imported ("" if it can).
func (l *PayerLine) Check() string {
	l.Ref = strings.TrimSpace(l.Ref)
	l.Name = cleanName(l.Name)
	l.Email = account.NormalizeEmail(l.Email)
	switch {
	case strings.ContainsRune(l.Ref+l.Name+l.Email, 0) || !utf8.ValidString(l.Ref+l.Name+l.Email):
		return "La ligne contient des caractères non valides."
	case l.Ref == "":
		return "Référence manquante."
	case utf8.RuneCountInString(l.Ref) > maxRefRunes:
		return fmt.Sprintf("Référence trop longue (%d caractères au maximum).", maxRefRunes)
	case strings.IndexFunc(l.Ref, unicode.IsControl) >= 0:
		return "Référence invalide (caractères de contrôle)."
	case l.Name == "":
		return "Nom manquant."
	case utf8.RuneCountInString(l.Name) > maxNameRunes:
		return fmt.Sprintf("Nom trop long (%d caractères au maximum).", maxNameRunes)
	case l.Email == "":
		return "Adresse mail manquante."
	case !account.ValidEmail(l.Email):
		return fmt.Sprintf("Adresse mail invalide : « %s ».", truncate(l.Email, 100))
	}
	return ""
}

// cleanName collapses whitespace and drops control characters.
func cleanName(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(s), " ")
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

type payerColumn int

const (
	payerNone payerColumn = iota
	payerRef
	payerName
	payerEmail
)

// payerColumnFor recognizes a header cell, ignoring case, accents, spaces,
// dashes and underscores.
func payerColumnFor(h string) payerColumn {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	f, _, err := transform.String(t, h)
	if err != nil {
		f = h
	}
	f = strings.Map(func(r rune) rune {
		if r == ' ' || r == '_' || r == '-' || r == '.' || r == '\u00a0' {
			return -1
		}
		return unicode.ToLower(r)
	}, f)
	switch f {
	case "reference", "ref", "referenceredevable", "refredevable", "externalref":
		return payerRef
	case "nom", "nomaffiche", "displayname", "nomredevable", "nomprenom", "name":
		return payerName
	case "email", "mail", "adressemail", "adresseemail", "courriel", "adressecourriel", "adressedemessagerie":
		return payerEmail
	}
	return payerNone
}

func (c payerColumn) label() string {
	switch c {
	case payerRef:
		return "référence"
	case payerName:
		return "nom"
	case payerEmail:
		return "email"
	}
	return ""
}

// payerParser turns the records of a payers file into PayerLines.
type payerParser struct {
	rr   *recordReader
	idx  map[payerColumn]int
	need int
}

// newPayerParser reads the header; an *errStructure refuses the file.
func newPayerParser(rr *recordReader) (*payerParser, error) {
	header, _, err := rr.next()
	var bq *errBadQuotes
	switch {
	case err == io.EOF:
		return nil, &errStructure{"Le fichier est vide."}
	case errors.As(err, &bq):
		return nil, &errStructure{"Ligne 1 : format CSV invalide (guillemets mal fermés ?)."}
	case err != nil:
		return nil, err
	}
	p := &payerParser{rr: rr, idx: map[payerColumn]int{}}
	for i, h := range header {
		c := payerColumnFor(h)
		if c == payerNone {
			continue // other columns of the export are ignored
		}
		if _, dup := p.idx[c]; dup {
			return nil, &errStructure{fmt.Sprintf("La colonne « %s » apparaît deux fois dans la ligne d'en-tête.", c.label())}
		}
		p.idx[c] = i
	}
	var missing []string
	for _, c := range []payerColumn{payerRef, payerName, payerEmail} {
		if _, ok := p.idx[c]; !ok {
			missing = append(missing, c.label())
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("Colonne(s) manquante(s) dans la ligne d'en-tête : %s.", strings.Join(missing, ", "))
		if len(header) == 1 && strings.ContainsAny(header[0], ",\t") {
			msg += " Les colonnes doivent être séparées par des points-virgules (;)."
		}
		return nil, &errStructure{msg}
	}
	p.need = max(p.idx[payerRef], p.idx[payerName], p.idx[payerEmail]) + 1
	return p, nil
}

// next returns the next payer line, with the French reason why it is
// rejected (reason != ""); io.EOF ends the file, an *errStructure refuses it.
func (p *payerParser) next() (PayerLine, string, error) {
	for {
		rec, line, err := p.rr.next()
		var bq *errBadQuotes
		if errors.As(err, &bq) {
			return PayerLine{}, "", &errStructure{fmt.Sprintf("Ligne %d : format CSV invalide (guillemets mal fermés ?).", bq.line)}
		}
		if err != nil {
			return PayerLine{}, "", err
		}
		if blank(rec) {
			continue
		}
		// With lazy quotes an unclosed quote swallows the following lines
		// into one field: refuse the file rather than lose them silently.
		for _, f := range rec {
			if strings.ContainsAny(f, "\r\n") {
				return PayerLine{}, "", &errStructure{fmt.Sprintf("Ligne %d : guillemet non fermé (ou retour à la ligne dans un champ).", line)}
			}
		}
		l := PayerLine{Line: line}
		if len(rec) < p.need {
			return l, fmt.Sprintf("Nombre de colonnes insuffisant (%d au lieu d'au moins %d).", len(rec), p.need), nil
		}
		l.Ref, l.Name, l.Email = rec[p.idx[payerRef]], rec[p.idx[payerName]], rec[p.idx[payerEmail]]
		return l, l.Check(), nil
	}
}
