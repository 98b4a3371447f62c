package imports

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"portail/pkg/invoice"
)

// InvoiceLine is one invoice as the billing software sends it, typed: the
// CSV parser makes them from the export's cells, the API from JSON. Both
// go through Check and the same apply code.
type InvoiceLine struct {
	Line        int // in the file (the header is line 1); 0 for a single API write
	Number      string
	PayerRef    string
	Object      string
	IssuedOn    time.Time
	DueOn       time.Time
	AmountCents int64
	Status      invoice.Status // "" when not given: new invoices are unpaid, others keep theirs
	DirectDebit *bool          // nil when not given: new invoices are not, others keep theirs
	Suspended   *bool          // idem
}

// maxObjectRunes bounds the object shown in the resident's list.
const maxObjectRunes = 255

// maxPayerRefRunes bounds a payer's reference in the billing software.
const maxPayerRefRunes = 100

// Check normalises the line (trimmed cells, line breaks of the object as
// spaces) and lists, in French, what is wrong with it.
func (l *InvoiceLine) Check() []string {
	var reasons []string
	l.Number = strings.TrimSpace(l.Number)
	l.PayerRef = strings.TrimSpace(l.PayerRef)
	objectOK := utf8.ValidString(l.Object)
	l.Object = strings.TrimSpace(strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' ' // line breaks inside a quoted cell
		}
		return r
	}, l.Object))
	switch {
	case l.Number == "":
		reasons = append(reasons, "Numéro de facture vide")
	case !invoice.ValidNumber(l.Number):
		reasons = append(reasons, fmt.Sprintf("Numéro de facture invalide %s : lettres, chiffres, « - », « _ » et « . » seulement, 64 caractères au plus", quoted(l.Number)))
	}
	switch {
	case l.PayerRef == "":
		reasons = append(reasons, "Référence redevable vide")
	case utf8.RuneCountInString(l.PayerRef) > maxPayerRefRunes || !utf8.ValidString(l.PayerRef) ||
		strings.IndexFunc(l.PayerRef, unicode.IsControl) >= 0:
		reasons = append(reasons, fmt.Sprintf("Référence redevable invalide %s", quoted(l.PayerRef)))
	}
	if !objectOK {
		reasons = append(reasons, "Objet illisible (encodage)")
	} else if n := utf8.RuneCountInString(l.Object); n > maxObjectRunes {
		reasons = append(reasons, fmt.Sprintf("Objet trop long : %d caractères, %d au plus", n, maxObjectRunes))
	}
	if !l.IssuedOn.IsZero() && !l.DueOn.IsZero() && l.DueOn.Before(l.IssuedOn) {
		reasons = append(reasons, "L'échéance précède la date de la facture")
	}
	switch {
	case l.AmountCents < 0:
		reasons = append(reasons, fmt.Sprintf("Montant négatif %s : les avoirs ne sont pas pris en charge", quoted(invoice.FormatAmount(l.AmountCents))))
	case l.AmountCents > invoice.MaxAmountCents:
		reasons = append(reasons, fmt.Sprintf("Montant trop élevé %s", quoted(invoice.FormatAmount(l.AmountCents))))
	}
	if l.Status != "" && !l.Status.Valid() {
		reasons = append(reasons, fmt.Sprintf("Statut %s invalide : non réglée, réglée, trésorerie ou annulée attendu", quoted(string(l.Status))))
	}
	return reasons
}

// invoiceColumn is a column of the invoices file.
type invoiceColumn int

const (
	colNone invoiceColumn = iota
	colNumber
	colPayer
	colObject
	colIssued
	colDue
	colAmount
	colStatus
	colDirectDebit
	colSuspended
	numInvoiceColumns
)

// label is the column's name in reports.
func (c invoiceColumn) label() string {
	switch c {
	case colNumber:
		return "numéro"
	case colPayer:
		return "référence redevable"
	case colObject:
		return "objet"
	case colIssued:
		return "date"
	case colDue:
		return "échéance"
	case colAmount:
		return "montant"
	case colStatus:
		return "statut"
	case colDirectDebit:
		return "prélèvement"
	case colSuspended:
		return "suspendu"
	}
	return ""
}

func (c invoiceColumn) required() bool { return c >= colNumber && c <= colAmount }

// invoiceColumnFor maps a header cell, as the billing software names it, to a column.
func invoiceColumnFor(header string) invoiceColumn {
	switch normalizeLabel(header) {
	case "numero", "numero facture", "numero de facture", "n facture", "no facture", "num facture",
		"n de facture", "facture", "reference facture", "ref facture":
		return colNumber
	case "reference", "reference redevable", "ref redevable", "redevable", "payeur", "reference payeur",
		"code redevable", "identifiant redevable", "numero redevable", "n redevable":
		return colPayer
	case "objet", "objet facture", "libelle", "designation":
		return colObject
	case "date", "date facture", "date de facture", "date d emission", "date emission", "date de emission":
		return colIssued
	case "echeance", "date echeance", "date d echeance", "date de echeance", "date limite", "date limite de paiement":
		return colDue
	case "montant", "montant ttc", "montant a regler", "montant du", "montant facture":
		return colAmount
	case "statut", "etat", "statut facture", "situation":
		return colStatus
	case "prelevement", "prelevement automatique", "preleve", "prelevee":
		return colDirectDebit
	case "suspendu", "paiement suspendu", "suspension", "suspension paiement":
		return colSuspended
	}
	return colNone
}

// parseYesNo reads an optional yes/no cell; set is false for a blank cell.
func parseYesNo(s string) (value, set bool, ok bool) {
	switch normalizeLabel(s) {
	case "":
		return false, false, true
	case "oui", "o", "yes", "y", "vrai", "true", "1", "x":
		return true, true, true
	case "non", "n", "no", "faux", "false", "0":
		return false, true, true
	}
	return false, false, false
}

// parseStatus reads an optional status cell; "" means not given.
func parseStatus(s string) (invoice.Status, bool) {
	switch normalizeLabel(s) {
	case "":
		return "", true
	case "non reglee", "non regle", "impayee", "impaye", "a regler", "a payer", "unpaid":
		return invoice.StatusUnpaid, true
	case "reglee", "regle", "payee", "paye", "acquittee", "paid":
		return invoice.StatusPaid, true
	case "tresorerie", "en tresorerie", "transmise en tresorerie", "treasury":
		return invoice.StatusTreasury, true
	case "annulee", "annule", "cancelled":
		return invoice.StatusCancelled, true
	}
	return "", false
}

// invoiceParser turns the records of an invoices file into InvoiceLines.
type invoiceParser struct {
	rr      *recordReader
	idx     [numInvoiceColumns]int // field index of each column, -1 when absent
	nfields int
}

// newInvoiceParser reads the header. An *errStructure tells why the file
// is no usable invoices file.
func newInvoiceParser(rr *recordReader) (*invoiceParser, error) {
	p := &invoiceParser{rr: rr}
	for i := range p.idx {
		p.idx[i] = -1
	}
	header, _, err := rr.next()
	var bq *errBadQuotes
	switch {
	case err == io.EOF:
		return nil, &errStructure{"Fichier vide"}
	case errors.As(err, &bq):
		return nil, &errStructure{"Ligne d'en-tête illisible (guillemets mal placés)"}
	case err != nil:
		return nil, err
	}
	p.nfields = len(header)
	if len(header) == 1 {
		h := header[0]
		if strings.Count(h, ",") >= 2 || strings.Count(h, "\t") >= 2 {
			return nil, &errStructure{"Séparateur incorrect : les colonnes doivent être séparées par des points-virgules (« ; »)"}
		}
	}
	for i, h := range header {
		c := invoiceColumnFor(h)
		if c == colNone {
			continue // extra columns of the billing export are ignored
		}
		if p.idx[c] >= 0 {
			return nil, &errStructure{fmt.Sprintf("Colonne %s présente deux fois dans la ligne d'en-tête", quoted(h))}
		}
		p.idx[c] = i
	}
	var missing []string
	for c := colNumber; c < numInvoiceColumns; c++ {
		if c.required() && p.idx[c] < 0 {
			missing = append(missing, c.label())
		}
	}
	if len(missing) > 0 {
		msg := "Colonnes obligatoires absentes de la ligne d'en-tête : " + strings.Join(missing, ", ")
		if len(missing) == int(colAmount-colNumber+1) {
			msg = "Ligne d'en-tête absente ou non reconnue : la première ligne doit nommer les colonnes (numéro ; référence redevable ; objet ; date ; échéance ; montant)"
		}
		return nil, &errStructure{msg}
	}
	return p, nil
}

// next returns the next invoice line, or the line's number with the French
// reason why it is rejected (reason != ""); io.EOF ends the file, an
// *errStructure refuses it.
func (p *invoiceParser) next() (l InvoiceLine, reason string, err error) {
	for {
		rec, line, err := p.rr.next()
		var bq *errBadQuotes
		if errors.As(err, &bq) {
			return InvoiceLine{Line: bq.line}, "Guillemets mal placés : ligne illisible", nil
		}
		if err != nil {
			return InvoiceLine{}, "", err
		}
		if blank(rec) {
			continue
		}
		l, reasons := p.line(line, rec)
		return l, strings.Join(reasons, " ; "), nil
	}
}

func (p *invoiceParser) line(line int, rec []string) (InvoiceLine, []string) {
	l := InvoiceLine{Line: line}
	if len(rec) < p.nfields {
		return l, []string{fmt.Sprintf("Nombre de colonnes incorrect : %d au lieu de %d", len(rec), p.nfields)}
	}
	for _, f := range rec[p.nfields:] {
		if strings.TrimSpace(f) != "" {
			return l, []string{fmt.Sprintf("Nombre de colonnes incorrect : %d au lieu de %d", len(rec), p.nfields)}
		}
	}
	get := func(c invoiceColumn) string {
		if p.idx[c] < 0 {
			return ""
		}
		return strings.TrimSpace(rec[p.idx[c]])
	}
	var reasons []string
	fieldReason := func(prefix string, err error) {
		var fe *invoice.FieldError
		if errors.As(err, &fe) {
			reasons = append(reasons, prefix+fe.Reason)
		} else {
			reasons = append(reasons, prefix+err.Error())
		}
	}
	l.Number, l.PayerRef, l.Object = get(colNumber), get(colPayer), get(colObject)
	var err error
	if l.IssuedOn, err = invoice.ParseDate(get(colIssued)); err != nil {
		fieldReason("", err)
	}
	if l.DueOn, err = invoice.ParseDate(get(colDue)); err != nil {
		fieldReason("Échéance : ", err)
	}
	if l.AmountCents, err = invoice.ParseAmount(get(colAmount)); err != nil {
		fieldReason("", err)
	}
	var ok bool
	if l.Status, ok = parseStatus(get(colStatus)); !ok {
		reasons = append(reasons, fmt.Sprintf("Statut %s invalide : non réglée, réglée, trésorerie ou annulée attendu", quoted(get(colStatus))))
	}
	if v, set, ok := parseYesNo(get(colDirectDebit)); !ok {
		reasons = append(reasons, fmt.Sprintf("Prélèvement : Valeur %s invalide : oui ou non attendu", quoted(get(colDirectDebit))))
	} else if set {
		l.DirectDebit = &v
	}
	if v, set, ok := parseYesNo(get(colSuspended)); !ok {
		reasons = append(reasons, fmt.Sprintf("Suspendu : Valeur %s invalide : oui ou non attendu", quoted(get(colSuspended))))
	} else if set {
		l.Suspended = &v
	}
	return l, append(l.Check(), reasons...)
}
