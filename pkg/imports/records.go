package imports

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/transform"
)

// readBuffer is the second pass's read buffer.
const readBuffer = 64 << 10

// errRecordTooLong is returned when a record (a line, or several when a
// quoted cell spans lines) exceeds the bound.
var errRecordTooLong = errors.New("imports: record too long")

// boundedReader hands over at most max bytes between two marks: the CSV
// reader above it can never accumulate a longer record, whatever the file
// (a quote never closed would otherwise swallow the rest of it).
type boundedReader struct {
	r   io.Reader
	n   int // bytes handed over since the last mark, plus those buffered then
	max int
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.n >= b.max {
		return 0, errRecordTooLong
	}
	if len(p) > b.max-b.n {
		p = p[:b.max-b.n]
	}
	n, err := b.r.Read(p)
	b.n += n
	return n, err
}

// recordReader reads the CSV records of a decoded file, one at a time, each
// at most maxRecord bytes long.
type recordReader struct {
	br      *bufio.Reader
	bounded *boundedReader
	csv     *csv.Reader
	endLine int // last line of the previous record
}

// newRecordReader reads r, a file the first pass found in encoding.
func newRecordReader(r io.Reader, encoding string, maxRecord int, lazyQuotes bool) *recordReader {
	if encoding == EncodingWindows1252 {
		r = transform.NewReader(r, charmap.Windows1252.NewDecoder())
	} else {
		r = &skipPrefix{r: r, prefix: "\xEF\xBB\xBF"} // a BOM, when there is one
	}
	// A record of maxRecord bytes always fits: the bound counts what the
	// buffer holds beyond it.
	bounded := &boundedReader{r: r, max: maxRecord + readBuffer}
	br := bufio.NewReaderSize(bounded, readBuffer)
	cr := csv.NewReader(br)
	cr.Comma = ';'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.LazyQuotes = lazyQuotes
	return &recordReader{br: br, bounded: bounded, csv: cr}
}

// errStructure is a problem with the whole file, reported on line 0.
type errStructure struct{ reason string }

func (e *errStructure) Error() string { return "imports: " + e.reason }

// errBadQuotes is a record whose quotes are misplaced; parsing goes on.
type errBadQuotes struct{ line int }

func (e *errBadQuotes) Error() string { return fmt.Sprintf("imports: line %d: bad quotes", e.line) }

// next returns the next record and the line it starts on. The slice is
// reused by the following call. Errors: io.EOF at the end, *errBadQuotes
// for a record to reject, *errStructure when the file must be refused.
func (rr *recordReader) next() ([]string, int, error) {
	rr.bounded.n = rr.br.Buffered()
	rec, err := rr.csv.Read()
	if err != nil {
		var pe *csv.ParseError
		switch {
		case err == io.EOF:
			return nil, 0, io.EOF
		case errors.Is(err, errRecordTooLong):
			return nil, 0, &errStructure{fmt.Sprintf("Ligne %d : enregistrement trop long (plus de %d Kio) ; un guillemet n'est probablement pas fermé",
				rr.endLine+1, (rr.bounded.max-readBuffer)>>10)}
		case errors.As(err, &pe):
			rr.endLine = pe.Line
			return nil, pe.StartLine, &errBadQuotes{line: pe.StartLine}
		}
		return nil, 0, fmt.Errorf("imports: read file: %w", err)
	}
	line, _ := rr.csv.FieldPos(0)
	last, _ := rr.csv.FieldPos(len(rec) - 1)
	rr.endLine = last + strings.Count(rec[len(rec)-1], "\n")
	return rec, line, nil
}

// skipPrefix drops prefix from the start of r.
type skipPrefix struct {
	r       io.Reader
	prefix  string
	skipped bool
}

func (s *skipPrefix) Read(p []byte) (int, error) {
	if !s.skipped {
		s.skipped = true
		buf := make([]byte, len(s.prefix))
		n, err := io.ReadFull(s.r, buf)
		if string(buf[:n]) != s.prefix {
			// Not there after all: hand the bytes over.
			s.r = io.MultiReader(strings.NewReader(string(buf[:n])), s.r)
		} else if err != nil {
			return 0, err
		}
	}
	return s.r.Read(p)
}

// blank tells whether a record holds nothing but spaces (the trailing
// ";;;;" lines of spreadsheet exports).
func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// quoted shows a bad input in a report, cut so a huge cell cannot bloat it.
func quoted(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		s = string(r[:max]) + "…"
	}
	return "« " + strings.ToValidUTF8(s, "\uFFFD") + " »"
}

// normalizeLabel lowercases s, strips French accents and turns every other
// non-alphanumeric character into a single space: "Date d'émission" →
// "date d emission", "N° facture" → "n facture", "Montant (€)" → "montant".
func normalizeLabel(s string) string {
	var b strings.Builder
	space := false
	for _, r := range strings.ToLower(s) {
		var repl string
		switch r {
		case 'à', 'â', 'ä', 'á', 'ã', 'å':
			repl = "a"
		case 'é', 'è', 'ê', 'ë':
			repl = "e"
		case 'î', 'ï', 'í', 'ì':
			repl = "i"
		case 'ô', 'ö', 'ó', 'ò', 'õ':
			repl = "o"
		case 'ù', 'û', 'ü', 'ú':
			repl = "u"
		case 'ç':
			repl = "c"
		case 'ÿ':
			repl = "y"
		case 'œ':
			repl = "oe"
		case 'æ':
			repl = "ae"
		default:
			if r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
				repl = string(r)
			}
		}
		if repl == "" {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteString(repl)
	}
	return b.String()
}
