// Package csvexport writes the CSV files staff download (payments for
// reconciliation, paperless requests, invoices…) so that they open cleanly
// in Excel and LibreOffice with French settings: UTF-8 with a byte order
// mark, ';' between cells, CRLF line ends, amounts with a decimal comma.
//
// Every cell is neutralised against spreadsheet formula injection: a cell
// that starts with '=', '+', '-', '@', a tab or a carriage return would be
// run as a formula by a spreadsheet, and residents choose some of the text
// exported (names, messages, invoice objects). Such a cell is written with
// a leading apostrophe, which spreadsheets show as text.
//
// Rows are written one at a time to the underlying writer (buffered): an
// export of any size holds one row in memory.
package csvexport

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"time"
)

// bom makes Excel read the file as UTF-8.
const bom = "\uFEFF"

// Writer writes one CSV export.
type Writer struct {
	buf *bufio.Writer
	csv *csv.Writer
	row []string
}

// New starts an export on w with its header row.
func New(w io.Writer, header ...string) (*Writer, error) {
	buf := bufio.NewWriterSize(w, 32<<10)
	if _, err := buf.WriteString(bom); err != nil {
		return nil, fmt.Errorf("csvexport: %w", err)
	}
	c := csv.NewWriter(buf)
	c.Comma = ';'
	c.UseCRLF = true
	ex := &Writer{buf: buf, csv: c}
	if err := ex.Write(header...); err != nil {
		return nil, err
	}
	return ex, nil
}

// Write adds one row; cells are neutralised (see the package comment).
func (w *Writer) Write(cells ...string) error {
	w.row = w.row[:0]
	for _, c := range cells {
		w.row = append(w.row, Neutralise(c))
	}
	if err := w.csv.Write(w.row); err != nil {
		return fmt.Errorf("csvexport: %w", err)
	}
	return nil
}

// Flush writes what is buffered; call it at the end (and may be called
// between rows to stream to a slow client).
func (w *Writer) Flush() error {
	w.csv.Flush()
	if err := w.csv.Error(); err != nil {
		return fmt.Errorf("csvexport: %w", err)
	}
	if err := w.buf.Flush(); err != nil {
		return fmt.Errorf("csvexport: %w", err)
	}
	return nil
}

// Neutralise returns cell as a spreadsheet will show it as text: a leading
// apostrophe before a first character that would start a formula.
func Neutralise(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + cell
	}
	return cell
}

// Amount writes cents as French spreadsheets read numbers: "243,11"
// (no currency sign, no thousands separator: the cell stays a number).
func Amount(cents int64) string {
	sign := ""
	if cents < 0 {
		// Never a formula: the minus is followed by digits only, and
		// Write neutralises it anyway (refunds are shown positive).
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d,%02d", sign, cents/100, cents%100)
}

// Date writes a date as JJ/MM/AAAA in loc (Europe/Paris for the product).
func Date(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("02/01/2006")
}

// DateTime writes a timestamp as "JJ/MM/AAAA HH:MM" in loc.
func DateTime(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return ""
	}
	return t.In(loc).Format("02/01/2006 15:04")
}

// Bool writes "oui" or "non".
func Bool(b bool) string {
	if b {
		return "oui"
	}
	return "non"
}

// Filename is a download name for an export: prefix, commune slug and
// date, e.g. "paiements-sistec-2026-12-02.csv".
func Filename(prefix, slug string, day time.Time) string {
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, strings.ToLower(prefix+"-"+slug))
	return clean + "-" + day.Format("2006-01-02") + ".csv"
}
