package invoice

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/transform"
)

// Encodings the import reads.
const (
	EncodingUTF8        = "UTF-8"
	EncodingWindows1252 = "Windows-1252"
)

// fileScan is what one pass over the raw bytes tells before parsing.
type fileScan struct {
	sha256   string
	size     int64
	lines    int  // lines holding anything but line breaks
	hasQuote bool // a '"' anywhere: lines and records may then differ
	bom      bool // UTF-8 byte order mark
	encoding string
	problem  string // French reason when the file cannot be read at all
}

// scanFile hashes r and decides its encoding: UTF-8 (with or without BOM)
// when every byte sequence is valid UTF-8, else Windows-1252. It refuses what
// is no CSV text at all (binary, UTF-16, spreadsheet, PDF) and files mixing
// UTF-8 with another encoding, which would import garbled accents.
func scanFile(r io.Reader, maxBytes int64) (fileScan, error) {
	var fs fileScan
	h := sha256.New()
	br := bufio.NewReaderSize(r, 256<<10)
	head, _ := br.Peek(5)
	switch {
	case bytes.HasPrefix(head, []byte{0xEF, 0xBB, 0xBF}):
		fs.bom = true
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}), bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		fs.problem = "Encodage UTF-16 non pris en charge : enregistrez le fichier en CSV UTF-8 ou Windows-1252 (séparateur point-virgule)"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		fs.problem = "Ce fichier est une archive ZIP ou un classeur Excel, pas un fichier CSV : enregistrez-le au format CSV (séparateur point-virgule)"
	case bytes.HasPrefix(head, []byte("%PDF-")):
		fs.problem = "Ce fichier est un PDF, pas un fichier CSV"
	}
	if fs.problem != "" {
		// Still identify the file in the import journal.
		n, err := io.Copy(h, io.LimitReader(br, maxBytes))
		if err != nil {
			return fs, fmt.Errorf("invoice: read import file: %w", err)
		}
		fs.size, fs.sha256 = n, hex.EncodeToString(h.Sum(nil))
		return fs, nil
	}
	buf := make([]byte, 256<<10)
	var work, carry []byte
	lineHasContent := false
	multibyte, invalid, undefined1252, controls, crs, lfs := 0, 0, 0, 0, 0, 0
	for {
		n, err := br.Read(buf)
		chunk := buf[:n]
		if n > 0 {
			h.Write(chunk)
			fs.size += int64(n)
			if maxBytes > 0 && fs.size > maxBytes {
				fs.problem = fmt.Sprintf("Fichier trop volumineux : plus de %d Mo", maxBytes>>20)
				return fs, nil
			}
			for _, c := range chunk {
				switch {
				case c == '\n':
					lfs++
					if lineHasContent {
						fs.lines++
					}
					lineHasContent = false
				case c == '\r':
					crs++
				default:
					lineHasContent = true
					if c == '"' {
						fs.hasQuote = true
					} else if c < 0x20 && c != '\t' || c == 0x7f {
						controls++
					} else if c == 0x81 || c == 0x8d || c == 0x8f || c == 0x90 || c == 0x9d {
						undefined1252++
					}
				}
			}
			// UTF-8 validity across chunk boundaries: carry an incomplete tail.
			work = append(append(work[:0], carry...), chunk...)
			i := 0
			for i < len(work) {
				if work[i] < utf8.RuneSelf {
					i++
					continue
				}
				if !utf8.FullRune(work[i:]) {
					break
				}
				r, size := utf8.DecodeRune(work[i:])
				if r == utf8.RuneError && size == 1 {
					invalid++
				} else {
					multibyte++
				}
				i += size
			}
			carry = append(carry[:0], work[i:]...)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fs, fmt.Errorf("invoice: read import file: %w", err)
		}
	}
	if lineHasContent {
		fs.lines++
	}
	invalid += len(carry) // a truncated sequence at the very end
	fs.sha256 = hex.EncodeToString(h.Sum(nil))
	switch {
	case lfs == 0 && crs > 0:
		fs.problem = "Fins de ligne Macintosh (CR seul) non prises en charge : enregistrez le fichier au format « CSV (séparateur : point-virgule) » ou « CSV UTF-8 »"
	case fs.size == 0 || fs.lines == 0:
		fs.problem = "Fichier vide"
	case controls > 0:
		fs.problem = "Fichier illisible : ce n'est pas un fichier texte CSV (caractères binaires)"
	case invalid == 0:
		fs.encoding = EncodingUTF8
	case multibyte > 0 || fs.bom:
		fs.problem = "Encodage incohérent : le fichier mélange UTF-8 et un autre encodage ; enregistrez-le entièrement en UTF-8 ou en Windows-1252"
	case undefined1252 > 0:
		fs.problem = "Encodage non reconnu : enregistrez le fichier en UTF-8 ou en Windows-1252 (ANSI)"
	default:
		fs.encoding = EncodingWindows1252
	}
	return fs, nil
}

// decoder returns r as UTF-8 text without BOM.
func decoder(r io.Reader, fs fileScan) io.Reader {
	br := bufio.NewReaderSize(r, 256<<10)
	if fs.encoding == EncodingWindows1252 {
		return transform.NewReader(br, charmap.Windows1252.NewDecoder())
	}
	if fs.bom {
		br.Discard(3)
	}
	return br
}

// csvRow is one valid invoice line of the file.
type csvRow struct {
	line        int
	number      string
	payerRef    string
	object      string
	issuedOn    time.Time
	dueOn       time.Time
	amountCents int64
	status      Status // "" when not given: new invoices are unpaid, others keep theirs
	directDebit *bool  // nil when not given
	suspended   *bool  // nil when not given
}

// csvParser reads the billing software's export: ';' separated, a header row
// naming the columns, one invoice per line.
type csvParser struct {
	r       *csv.Reader
	idx     [numColumns]int // field index of each column, -1 when absent
	nfields int
}

// maxObjectRunes bounds the object shown in the resident's list.
const maxObjectRunes = 255

// errStructure is a problem with the whole file, reported on line 0.
type errStructure struct{ reason string }

func (e *errStructure) Error() string { return "invoice: " + e.reason }

// newCSVParser reads the header. A *errStructure tells why the file is no
// usable invoice CSV.
func newCSVParser(r io.Reader) (*csvParser, error) {
	cr := csv.NewReader(r)
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	p := &csvParser{r: cr}
	for i := range p.idx {
		p.idx[i] = -1
	}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &errStructure{"Fichier vide"}
	}
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, &errStructure{"Ligne d'en-tête illisible (guillemets mal placés)"}
		}
		return nil, fmt.Errorf("invoice: read header: %w", err)
	}
	p.nfields = len(header)
	if len(header) == 1 {
		h := header[0]
		if strings.Count(h, ",") >= 2 || strings.Count(h, "\t") >= 2 {
			return nil, &errStructure{"Séparateur incorrect : les colonnes doivent être séparées par des points-virgules (« ; »)"}
		}
	}
	var unknown []string
	for i, h := range header {
		c := columnFor(h)
		if c == colNone {
			if strings.TrimSpace(h) != "" {
				unknown = append(unknown, h)
			}
			continue
		}
		if p.idx[c] >= 0 {
			return nil, &errStructure{fmt.Sprintf("Colonne %s présente deux fois dans la ligne d'en-tête", quoted(h))}
		}
		p.idx[c] = i
	}
	var missing []string
	for c := colNumber; c < numColumns; c++ {
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
	_ = unknown // extra columns of the billing export are ignored
	return p, nil
}

// next returns the next invoice line. A *lineError is a rejected line
// (parsing goes on); io.EOF ends the file.
func (p *csvParser) next() (csvRow, error) {
	for {
		rec, err := p.r.Read()
		if err == io.EOF {
			return csvRow{}, io.EOF
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return csvRow{}, &lineError{line: pe.StartLine, reason: "Guillemets mal placés : ligne illisible"}
			}
			return csvRow{}, fmt.Errorf("invoice: read file: %w", err)
		}
		line, _ := p.r.FieldPos(0)
		blank := true
		for _, f := range rec {
			if strings.TrimSpace(f) != "" {
				blank = false
				break
			}
		}
		if blank {
			continue // trailing ";;;;" lines of spreadsheet exports
		}
		return p.row(line, rec)
	}
}

// lineError is a rejected line while parsing.
type lineError struct {
	line   int
	number string
	reason string
}

func (e *lineError) Error() string { return fmt.Sprintf("invoice: line %d: %s", e.line, e.reason) }

func (p *csvParser) row(line int, rec []string) (csvRow, error) {
	if len(rec) < p.nfields {
		return csvRow{}, &lineError{line: line, reason: fmt.Sprintf("Nombre de colonnes incorrect : %d au lieu de %d", len(rec), p.nfields)}
	}
	for _, f := range rec[p.nfields:] {
		if strings.TrimSpace(f) != "" {
			return csvRow{}, &lineError{line: line, reason: fmt.Sprintf("Nombre de colonnes incorrect : %d au lieu de %d", len(rec), p.nfields)}
		}
	}
	get := func(c column) string {
		if p.idx[c] < 0 {
			return ""
		}
		return strings.TrimSpace(rec[p.idx[c]])
	}
	row := csvRow{line: line}
	var reasons []string
	bad := func(err error) {
		var fe *FieldError
		if errors.As(err, &fe) {
			reasons = append(reasons, fe.Reason)
		} else {
			reasons = append(reasons, err.Error())
		}
	}

	row.number = get(colNumber)
	switch {
	case row.number == "":
		reasons = append(reasons, "Numéro de facture vide")
	case !ValidNumber(row.number):
		reasons = append(reasons, fmt.Sprintf("Numéro de facture invalide %s : lettres, chiffres, « - », « _ » et « . » seulement, 64 caractères au plus", quoted(row.number)))
	}
	row.payerRef = get(colPayer)
	switch {
	case row.payerRef == "":
		reasons = append(reasons, "Référence redevable vide")
	case utf8.RuneCountInString(row.payerRef) > 100 || strings.IndexFunc(row.payerRef, unicode.IsControl) >= 0:
		reasons = append(reasons, fmt.Sprintf("Référence redevable invalide %s", quoted(row.payerRef)))
	}
	row.object = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' ' // line breaks inside a quoted cell
		}
		return r
	}, get(colObject))
	if n := utf8.RuneCountInString(row.object); n > maxObjectRunes {
		reasons = append(reasons, fmt.Sprintf("Objet trop long : %d caractères, %d au plus", n, maxObjectRunes))
	}
	var err error
	if row.issuedOn, err = ParseDate(get(colIssued)); err != nil {
		bad(err)
	}
	if row.dueOn, err = ParseDate(get(colDue)); err != nil {
		bad(fieldErr("Échéance : %s", err.(*FieldError).Reason))
	}
	if !row.issuedOn.IsZero() && !row.dueOn.IsZero() && row.dueOn.Before(row.issuedOn) {
		reasons = append(reasons, "L'échéance précède la date de la facture")
	}
	amount := get(colAmount)
	if row.amountCents, err = ParseAmount(amount); err != nil {
		bad(err)
	} else if row.amountCents < 0 {
		reasons = append(reasons, fmt.Sprintf("Montant négatif %s : les avoirs ne sont pas pris en charge", quoted(amount)))
	}
	if row.status, err = parseStatus(get(colStatus)); err != nil {
		bad(err)
	}
	if v, set, err := parseYesNo(get(colDirectDebit)); err != nil {
		bad(fieldErr("Prélèvement : %s", err.(*FieldError).Reason))
	} else if set {
		row.directDebit = &v
	}
	if v, set, err := parseYesNo(get(colSuspended)); err != nil {
		bad(fieldErr("Suspendu : %s", err.(*FieldError).Reason))
	} else if set {
		row.suspended = &v
	}
	if len(reasons) > 0 {
		num := row.number
		if !ValidNumber(num) {
			num = ""
		}
		return csvRow{}, &lineError{line: line, number: num, reason: strings.Join(reasons, " ; ")}
	}
	return row, nil
}
