package account

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"portail/pkg/db"
)

// Payers import limits.
const (
	MaxImportBytes    = 50 << 20
	maxRefLength      = 64
	maxNameLength     = 200
	importUpsertBatch = 5000
)

// Report is the outcome of a payers import.
type Report struct {
	Inserted  int
	Updated   int
	Unchanged int
	// Rejected lines were not imported; the other lines were.
	Rejected []LineError
	// Notes are lines imported with a remark (e.g. an activated account
	// keeps the address its resident uses to log in).
	Notes []LineError
}

// LineError explains, in French, what happened to one line of the file
// (Line counts from 1, the header being line 1).
type LineError struct {
	Line   int
	Reason string
}

// payerLine is one valid line of the file.
type payerLine struct {
	Line  int
	Ref   string
	Name  string
	Email string
}

// ImportPayers loads the billing software's payers file (CSV, ";",
// UTF-8 with or without BOM, or Windows-1252, with a header row) into the
// tenant's accounts, upserting by reference.
//
// It is atomic and idempotent: everything is written in one transaction; a
// structural problem (empty file, missing column, broken quoting) returns
// an *InputError and writes nothing; invalid lines are reported in
// Report.Rejected while the valid lines are imported (a payers file is a
// list of independent people: one bad address must not hold back the
// commune's other residents, and the report tells staff what to fix). Importing
// the same file again reports every line Unchanged.
//
// New references become pending accounts. The email of an activated
// account is not replaced by the file's (it is its resident's login, which
// he may have changed on the portal); a note reports the difference.
// Accounts missing from the file are left as they are.
func (s *Service) ImportPayers(ctx context.Context, tenantID int64, r io.Reader) (Report, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxImportBytes+1))
	if err != nil {
		return Report{}, fmt.Errorf("account: import: read: %w", err)
	}
	if len(raw) > MaxImportBytes {
		return Report{}, &InputError{"file", fmt.Sprintf("Le fichier dépasse la taille maximale de %d Mo.", MaxImportBytes>>20)}
	}
	lines, rep, err := parsePayers(decodeText(raw))
	if err != nil {
		return Report{}, err
	}
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		return applyPayers(ctx, tx, tenantID, lines, &rep)
	})
	if err != nil {
		return Report{}, err
	}
	return rep, nil
}

// decodeText reads UTF-8 (BOM dropped) when the bytes are valid UTF-8,
// Windows-1252 otherwise (what French billing software exports).
func decodeText(b []byte) string {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if utf8.Valid(b) {
		return string(b)
	}
	out, err := charmap.Windows1252.NewDecoder().Bytes(b)
	if err != nil { // cannot happen: every byte maps
		return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
	}
	return string(out)
}

type payerColumn int

const (
	colNone payerColumn = iota
	colRef
	colName
	colEmail
)

// headerColumn recognizes a header cell, ignoring case, accents, spaces,
// dashes and underscores.
func headerColumn(h string) payerColumn {
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
		return colRef
	case "nom", "nomaffiche", "displayname", "nomredevable", "nomprenom", "name":
		return colName
	case "email", "mail", "adressemail", "adresseemail", "courriel", "adressecourriel", "adressedemessagerie":
		return colEmail
	}
	return colNone
}

func (c payerColumn) label() string {
	switch c {
	case colRef:
		return "référence"
	case colName:
		return "nom"
	case colEmail:
		return "email"
	}
	return ""
}

// parsePayers validates the file's text line by line. A structural error
// is an *InputError; line errors go to the report.
func parsePayers(text string) ([]payerLine, Report, error) {
	var rep Report
	cr := csv.NewReader(strings.NewReader(text))
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true // a stray quote in a name is common in exports
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, rep, &InputError{"file", "Le fichier est vide."}
	}
	if err != nil {
		return nil, rep, csvError(err)
	}
	idx := map[payerColumn]int{}
	for i, h := range header {
		c := headerColumn(h)
		if c == colNone {
			continue // other columns of the export are ignored
		}
		if _, dup := idx[c]; dup {
			return nil, rep, &InputError{"file", fmt.Sprintf("La colonne « %s » apparaît deux fois dans la ligne d'en-tête.", c.label())}
		}
		idx[c] = i
	}
	var missing []string
	for _, c := range []payerColumn{colRef, colName, colEmail} {
		if _, ok := idx[c]; !ok {
			missing = append(missing, c.label())
		}
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("Colonne(s) manquante(s) dans la ligne d'en-tête : %s.", strings.Join(missing, ", "))
		if len(header) == 1 && strings.ContainsAny(header[0], ",\t") {
			msg += " Les colonnes doivent être séparées par des points-virgules (;)."
		}
		return nil, rep, &InputError{"file", msg}
	}
	need := max(idx[colRef], idx[colName], idx[colEmail]) + 1
	var lines []payerLine
	refSeen := map[string]int{}
	emailSeen := map[string]int{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, rep, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if blank(rec) {
			continue
		}
		// With LazyQuotes an unclosed quote swallows the following lines
		// into one field: refuse the file rather than lose them silently.
		for _, f := range rec {
			if strings.ContainsAny(f, "\r\n") {
				return nil, rep, &InputError{"file", fmt.Sprintf("Ligne %d : guillemet non fermé (ou retour à la ligne dans un champ).", line)}
			}
		}
		reject := func(reason string) { rep.Rejected = append(rep.Rejected, LineError{line, reason}) }
		if len(rec) < need {
			reject(fmt.Sprintf("Nombre de colonnes insuffisant (%d au lieu d'au moins %d).", len(rec), need))
			continue
		}
		if strings.ContainsRune(strings.Join(rec, ""), 0) {
			reject("La ligne contient des caractères non valides.")
			continue
		}
		ref := strings.TrimSpace(rec[idx[colRef]])
		name := cleanName(rec[idx[colName]])
		email := NormalizeEmail(rec[idx[colEmail]])
		switch {
		case ref == "":
			reject("Référence manquante.")
		case utf8.RuneCountInString(ref) > maxRefLength:
			reject(fmt.Sprintf("Référence trop longue (%d caractères au maximum).", maxRefLength))
		case name == "":
			reject("Nom manquant.")
		case utf8.RuneCountInString(name) > maxNameLength:
			reject(fmt.Sprintf("Nom trop long (%d caractères au maximum).", maxNameLength))
		case email == "":
			reject("Adresse mail manquante.")
		case !ValidEmail(email):
			reject(fmt.Sprintf("Adresse mail invalide : « %s ».", truncate(email, 100)))
		case refSeen[ref] != 0:
			reject(fmt.Sprintf("Référence « %s » déjà présente ligne %d.", ref, refSeen[ref]))
		case emailSeen[email] != 0:
			reject(fmt.Sprintf("Adresse mail « %s » déjà présente ligne %d.", email, emailSeen[email]))
		default:
			refSeen[ref], emailSeen[email] = line, line
			lines = append(lines, payerLine{Line: line, Ref: ref, Name: name, Email: email})
		}
	}
	return lines, rep, nil
}

func sortLineErrors(es []LineError) {
	slices.SortStableFunc(es, func(a, b LineError) int { return a.Line - b.Line })
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &InputError{"file", fmt.Sprintf("Ligne %d : format CSV invalide (guillemets mal fermés ?).", pe.StartLine)}
	}
	return &InputError{"file", "Format CSV invalide."}
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
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

type existingPayer struct {
	ID     int64  `db:"id"`
	Ref    string `db:"external_ref"`
	Name   string `db:"display_name"`
	Email  string `db:"email"`
	Status string `db:"status"`
}

// applyPayers writes the valid lines in tx, rejecting those whose address
// another account of the tenant keeps.
func applyPayers(ctx context.Context, tx *sqlx.Tx, tenantID int64, lines []payerLine, rep *Report) error {
	refs := make([]string, len(lines))
	emails := make([]string, len(lines))
	for i, l := range lines {
		refs[i], emails[i] = l.Ref, l.Email
	}
	var rows []existingPayer
	if err := tx.SelectContext(ctx, &rows, `SELECT id, external_ref, display_name, email, status FROM accounts
		WHERE tenant_id = $1 AND (external_ref = ANY($2) OR email = ANY($3)) FOR UPDATE`,
		tenantID, pq.Array(refs), pq.Array(emails)); err != nil {
		return fmt.Errorf("account: import: load: %w", err)
	}
	byRef := map[string]*existingPayer{}
	byEmail := map[string]*existingPayer{}
	for i := range rows {
		byRef[rows[i].Ref] = &rows[i]
		byEmail[rows[i].Email] = &rows[i]
	}
	// target is the address each line's account ends with: an activated
	// account keeps its own.
	target := make([]string, len(lines))
	lineOfRef := map[string]int{}
	for i, l := range lines {
		target[i] = l.Email
		if ex := byRef[l.Ref]; ex != nil && ex.Status == StatusActive && ex.Email != l.Email {
			target[i] = ex.Email
		}
		lineOfRef[l.Ref] = i
	}
	// An address is free if nobody holds it, or its holder is in the file
	// and moves to another address. Rejecting a line can un-free an
	// address, hence the loop to a fixed point.
	rejected := make([]bool, len(lines))
	for changed := true; changed; {
		changed = false
		for i, l := range lines {
			if rejected[i] {
				continue
			}
			h := byEmail[target[i]]
			if h == nil || h.Ref == l.Ref {
				continue
			}
			if j, ok := lineOfRef[h.Ref]; ok && !rejected[j] && target[j] != target[i] {
				continue
			}
			rejected[i], changed = true, true
		}
	}
	var moving []int64 // accounts whose address changes: parked first (swaps)
	var ins []payerLine
	for i, l := range lines {
		if rejected[i] {
			h := byEmail[target[i]]
			rep.Rejected = append(rep.Rejected, LineError{l.Line,
				fmt.Sprintf("Adresse mail « %s » déjà utilisée par un autre redevable (référence « %s »).", target[i], h.Ref)})
			continue
		}
		ex := byRef[l.Ref]
		if ex != nil && target[i] != l.Email {
			rep.Notes = append(rep.Notes, LineError{l.Line,
				fmt.Sprintf("Compte activé : l'adresse de connexion « %s » est conservée (le fichier indique « %s »).", ex.Email, l.Email)})
		}
		switch {
		case ex == nil:
			rep.Inserted++
		case ex.Name == l.Name && ex.Email == target[i]:
			rep.Unchanged++
			continue
		default:
			rep.Updated++
			if ex.Email != target[i] {
				moving = append(moving, ex.ID)
			}
		}
		ins = append(ins, payerLine{Line: l.Line, Ref: l.Ref, Name: l.Name, Email: target[i]})
	}
	if len(moving) > 0 {
		// Placeholder addresses let two accounts swap theirs within the
		// non-deferrable unique constraint; stale activation links (sent
		// to the old address) die.
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET email = 'moving-' || id || '@import.invalid'
			WHERE tenant_id = $1 AND id = ANY($2)`, tenantID, pq.Array(moving)); err != nil {
			return fmt.Errorf("account: import: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE account_tokens SET used_at = now()
			WHERE tenant_id = $1 AND account_id = ANY($2) AND used_at IS NULL`, tenantID, pq.Array(moving)); err != nil {
			return fmt.Errorf("account: import: %w", err)
		}
	}
	for start := 0; start < len(ins); start += importUpsertBatch {
		batch := ins[start:min(start+importUpsertBatch, len(ins))]
		rs, ns, es := make([]string, len(batch)), make([]string, len(batch)), make([]string, len(batch))
		for i, l := range batch {
			rs[i], ns[i], es[i] = l.Ref, l.Name, l.Email
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO accounts (tenant_id, external_ref, display_name, email)
			SELECT $1, u.r, u.n, u.e FROM unnest($2::text[], $3::text[], $4::text[]) AS u(r, n, e)
			ON CONFLICT (tenant_id, external_ref) DO UPDATE
			SET display_name = EXCLUDED.display_name, email = EXCLUDED.email, updated_at = now()`,
			tenantID, pq.Array(rs), pq.Array(ns), pq.Array(es)); err != nil {
			if db.IsUniqueViolation(err) {
				// Someone took an address between our check and now.
				return fmt.Errorf("account: import: concurrent change of an address, retry: %w", err)
			}
			return fmt.Errorf("account: import: upsert: %w", err)
		}
	}
	sortLineErrors(rep.Rejected)
	sortLineErrors(rep.Notes)
	return Audit(ctx, tx, AuditEntry{TenantID: tenantID, ActorKind: ActorSystem, Action: "payers.imported",
		Details: map[string]any{"inserted": rep.Inserted, "updated": rep.Updated, "unchanged": rep.Unchanged, "rejected": len(rep.Rejected)}})
}
