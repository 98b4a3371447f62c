package bench

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lib/pq"

	"portail/pkg/app"
	"portail/pkg/auth"
	"portail/pkg/imports"
	"portail/pkg/invoice"
	"portail/pkg/tenant"
)

const (
	// residentInvoices is how many invoices each bench resident has, at every
	// size: the list page then does the same work whatever the table's size.
	residentInvoices = 24
	benchPassword    = "Banc-d-essai-2026!"
	// maxFileLines keeps each file under the importer's limit (2,000,000).
	maxFileLines = 1_900_000
)

// commune is one seeded tenant.
type commune struct {
	n      int // 1-based
	slug   string
	host   string
	t      *tenant.Tenant
	payers int // P1 (the bench resident) … P<payers>
	next   int // next "other" invoice sequence number
}

func (c *commune) email(payer int) string {
	return fmt.Sprintf("p%d@%s.example.fr", payer, c.slug)
}

func (c *commune) residentName() string { return fmt.Sprintf("Camille Banc %03d", c.n) }

// seeder loads data through the portal's own import paths.
type seeder struct {
	r        *run
	a        *app.App
	communes []*commune
	total    int // invoices in the database

	files, lines int
	elapsed      time.Duration
	biggest      fileStat
}

type fileStat struct {
	c       *commune
	from, n int // "other" invoice sequence numbers imported
	elapsed time.Duration
}

// tenants writes one tenant.yaml per commune and applies them as
// `portail tenants apply` does.
func (s *seeder) tenants(ctx context.Context) error {
	dir := filepath.Join(s.r.dir, "tenants")
	for i := 1; i <= s.r.o.Communes; i++ {
		slug := fmt.Sprintf("bench-%03d", i)
		if err := os.MkdirAll(filepath.Join(dir, slug), 0o755); err != nil {
			return err
		}
		y := fmt.Sprintf(`slug: %s
name: "MAIRIE DE BANC %03d"
service_label: "Facturation Restauration scolaire"
hosts:
  primary: %s.localhost
contact:
  phone: "05 61 00 %02d %02d"
  hours: "du lundi au vendredi, de 8h à 18h"
  email: "facturation@%s.example.fr"
texts:
  welcome: "Un espace individualisé pour la consultation et le paiement des factures de la mairie de BANC %03d."
payfip:
  numcli: "9%05d"
  mode: ws
  saisie: T
  retry_delay: 2h
payments:
  batch_allowed: true
  batch_max: 10
`, slug, i, slug, i/100, i%100, slug, i, i)
		if err := os.WriteFile(filepath.Join(dir, slug, "tenant.yaml"), []byte(y), 0o644); err != nil {
			return err
		}
	}
	files, err := tenant.LoadDir(dir)
	if err != nil {
		return err
	}
	if _, err := s.a.Tenants.Apply(ctx, files); err != nil {
		return err
	}
	per, extra := s.r.o.Accounts/s.r.o.Communes, s.r.o.Accounts%s.r.o.Communes
	for i, f := range files {
		t, err := s.a.Tenants.BySlug(ctx, f.Slug)
		if err != nil {
			return err
		}
		c := &commune{n: i + 1, slug: f.Slug, host: f.Hosts.Primary, t: t, payers: per, next: 1}
		if i < extra {
			c.payers++
		}
		s.communes = append(s.communes, c)
	}
	s.r.progress("%d communes applied (hosts bench-NNN.localhost)", len(s.communes))
	return nil
}

// payers imports each commune's payers file through the import pipeline, then
// activates every account with one password hash computed once (hashing
// 100,000 passwords would take the machine an hour and measure nothing).
// Alerts are switched off per account: the bench's imports would otherwise
// email every payer.
func (s *seeder) payers(ctx context.Context) error {
	t := time.Now()
	for _, c := range s.communes {
		var b bytes.Buffer
		b.WriteString("reference;nom;email\n")
		for p := 1; p <= c.payers; p++ {
			name := fmt.Sprintf("Payeur %d %s", p, c.slug)
			if p == 1 {
				name = c.residentName()
			}
			fmt.Fprintf(&b, "P%d;%s;%s\n", p, name, c.email(p))
		}
		rep, err := s.a.Imports.ImportNow(ctx, c.t.ID, imports.KindPayers, imports.Actor{Kind: imports.ActorSystem},
			imports.File{Name: c.slug + "-payers.csv", Body: &b}, nil)
		if err != nil {
			return fmt.Errorf("bench: payers of %s: %w", c.slug, err)
		}
		if rep.Inserted != c.payers || rep.Rejected > 0 {
			return fmt.Errorf("bench: payers of %s: %d inserted, %d rejected (%v)", c.slug, rep.Inserted, rep.Rejected, rep.Errors)
		}
	}
	h := auth.NewHasher(1)
	if s.r.o.HashMemory > 0 {
		p := auth.DefaultHashParams()
		p.Memory, p.Iterations = s.r.o.HashMemory, s.r.o.HashTime
		h = auth.NewHasherWithParams(1, p)
	}
	hash, err := h.Hash(ctx, benchPassword)
	if err != nil {
		return err
	}
	if _, err := s.r.db.ExecContext(ctx, `UPDATE accounts SET status = 'active', password_hash = $1,
		password_changed_at = now(), invoice_alerts = false`, hash); err != nil {
		return fmt.Errorf("bench: activate accounts: %w", err)
	}
	s.r.progress("%d accounts imported (payers import) and activated in %s", s.r.o.Accounts, time.Since(t).Round(time.Millisecond))
	return nil
}

// grow imports invoices until the database holds target of them. Each
// commune gets one file per step (split under the importer's line limit);
// the first commune takes a fifth of the step, like a large town, so that
// the largest file measures the importer on a big file.
func (s *seeder) grow(ctx context.Context, target int) error {
	first := s.total == 0
	delta := target - s.total
	if first {
		delta -= residentInvoices * len(s.communes)
	}
	if delta < 0 {
		return fmt.Errorf("bench: cannot grow to %d invoices", target)
	}
	shares := make([]int, len(s.communes))
	rest := delta
	if len(s.communes) > 1 {
		shares[0] = delta / 5
		rest -= shares[0]
		per, extra := rest/(len(s.communes)-1), rest%(len(s.communes)-1)
		for i := 1; i < len(shares); i++ {
			shares[i] = per
			if i-1 < extra {
				shares[i]++
			}
		}
	} else {
		shares[0] = delta
	}
	t := time.Now()
	lines0 := s.lines
	for i, c := range s.communes {
		if first {
			// With a ZIP every line needs its PDF: the resident's invoices
			// and their PDFs come in a file of their own.
			if err := s.importFile(ctx, c, 0, true); err != nil {
				return err
			}
		}
		for left := shares[i]; left > 0; {
			n := min(left, maxFileLines)
			if err := s.importFile(ctx, c, n, false); err != nil {
				return err
			}
			left -= n
		}
		if (i+1)%25 == 0 || i == 0 {
			s.r.progress("  imported %s of %s lines (%d/%d communes, %.0f lines/s)", num(s.lines-lines0),
				num(target-s.total), i+1, len(s.communes), float64(s.lines-lines0)/time.Since(t).Seconds())
		}
	}
	s.total = target
	t2 := time.Now()
	// What autovacuum does after a bulk load, done now so that every size
	// is measured in the same steady state.
	if _, err := s.r.db.ExecContext(ctx, `VACUUM (ANALYZE)`); err != nil {
		return fmt.Errorf("bench: vacuum: %w", err)
	}
	s.r.progress("database at %s invoices (import %s, vacuum+analyze %s)", num(s.total),
		t2.Sub(t).Round(time.Millisecond), time.Since(t2).Round(time.Millisecond))
	return nil
}

// importFile imports n "other" invoices of c, or with withResident the
// bench resident's invoices with their PDFs, through the import pipeline:
// staged in S3, then applied by the import job's code, called here
// synchronously; the time measured is the job's (read back from S3,
// parse, COPY, checks, apply).
func (s *seeder) importFile(ctx context.Context, c *commune, n int, withResident bool) error {
	from := c.next
	var b bytes.Buffer
	b.Grow((n + residentInvoices) * 72)
	b.WriteString("numero;reference;objet;date;echeance;montant\n")
	line := make([]byte, 0, 128)
	if withResident {
		for j := 1; j <= residentInvoices; j++ {
			b.Write(residentRow(j).csv(line[:0]))
		}
	}
	for k := from; k < from+n; k++ {
		b.Write(c.row(k).csv(line[:0]))
	}
	st := s.a.Imports.NewStaging(c.t.ID, imports.KindInvoices, imports.Actor{Kind: imports.ActorSystem})
	defer st.Close()
	if err := st.ReadCSV(fmt.Sprintf("%s-%d.csv", c.slug, from), bytes.NewReader(b.Bytes())); err != nil {
		return err
	}
	b = bytes.Buffer{} // the staged copy is on disk and in S3
	if withResident {
		z, err := s.residentPDFs(c)
		if err != nil {
			return err
		}
		if err := st.ReadZIP(c.slug+"-pdfs.zip", bytes.NewReader(z)); err != nil {
			return err
		}
	}
	staged, err := st.CommitForApply(ctx)
	if err != nil {
		return fmt.Errorf("bench: stage %s: %w", c.slug, err)
	}
	start := time.Now()
	rep, err := s.a.Imports.Apply(ctx, c.t.ID, staged.BatchID)
	elapsed := time.Since(start)
	want := n
	if withResident {
		want += residentInvoices
	}
	if err != nil || rep.Inserted != want {
		return fmt.Errorf("bench: import %s: %v: %s, %d inserted of %d, first errors %v", c.slug, err, rep.Status, rep.Inserted, want, rep.Errors[:min(len(rep.Errors), 3)])
	}
	c.next += n
	s.files++
	s.lines += want
	s.elapsed += elapsed
	if n > s.biggest.n {
		s.biggest = fileStat{c: c, from: from, n: n, elapsed: elapsed}
	}
	return nil
}

// row is one invoice line of an import file.
type row struct {
	number, payer, object string
	issued                time.Time
	cents                 int64
}

// row is the k-th "other" invoice of c: spread over payers P2… and ten
// years of dates.
func (c *commune) row(k int) row {
	return row{
		number: "F" + strconv.Itoa(k),
		payer:  "P" + strconv.Itoa(2+(k-1)%max(c.payers-1, 1)),
		object: "Restauration scolaire",
		issued: time.Date(2015, 1, 1+(k*37)%3650, 0, 0, 0, 0, time.UTC), // Date normalises the day
		cents:  int64(100 + (k*7919)%50000),
	}
}

// residentRow is the j-th invoice of the bench resident: one per month.
func residentRow(j int) row {
	issued := time.Date(2023, time.Month(j), 5, 0, 0, 0, 0, time.UTC)
	return row{
		number: fmt.Sprintf("R-%d-%02d", issued.Year(), int(issued.Month())),
		payer:  "P1",
		object: "Restauration scolaire " + issued.Format("01/2006"),
		issued: issued,
		cents:  int64(2000 + j*137),
	}
}

func (r row) due() time.Time { return r.issued.AddDate(0, 0, 30) }

// csv appends the line as the billing software writes it.
func (r row) csv(b []byte) []byte {
	b = append(b, r.number...)
	b = append(b, ';')
	b = append(b, r.payer...)
	b = append(b, ';')
	b = append(b, r.object...)
	b = append(b, ';')
	b = r.issued.AppendFormat(b, "02/01/2006")
	b = append(b, ';')
	b = r.due().AppendFormat(b, "02/01/2006")
	b = append(b, ';')
	b = strconv.AppendInt(b, r.cents/100, 10)
	b = append(b, ',')
	if r.cents%100 < 10 {
		b = append(b, '0')
	}
	b = strconv.AppendInt(b, r.cents%100, 10)
	return append(b, '\n')
}

// residentPDFs is the ZIP of the bench resident's invoice PDFs.
func (s *seeder) residentPDFs(c *commune) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for j := 1; j <= residentInvoices; j++ {
		r := residentRow(j)
		pdf, err := invoice.GenerateInvoicePDF(c.t, invoice.Invoice{Number: r.number, Object: r.object,
			IssuedOn: r.issued, DueOn: r.due(), AmountCents: r.cents}, c.residentName())
		if err != nil {
			return nil, err
		}
		w, err := zw.Create(r.number + ".pdf")
		if err != nil {
			return nil, err
		}
		w.Write(pdf)
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// rawCopy COPYs the rows of the largest imported file, already typed, into
// a table shaped like invoices (same indexes and checks, no foreign key):
// the ceiling the importer is compared with.
func (s *seeder) rawCopy(ctx context.Context) (time.Duration, error) {
	f := s.biggest
	if f.c == nil {
		return 0, fmt.Errorf("bench: nothing imported")
	}
	ids := map[string]int64{}
	rows, err := s.r.db.QueryContext(ctx, `SELECT external_ref, id FROM accounts WHERE tenant_id = $1`, f.c.t.ID)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var ref string
		var id int64
		if err := rows.Scan(&ref, &id); err != nil {
			rows.Close()
			return 0, err
		}
		ids[ref] = id
	}
	rows.Close()
	if _, err := s.r.db.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS bench;
		DROP TABLE IF EXISTS bench.raw_copy;
		CREATE TABLE bench.raw_copy (LIKE public.invoices INCLUDING ALL)`); err != nil {
		return 0, err
	}
	defer s.r.db.ExecContext(context.WithoutCancel(ctx), `DROP TABLE IF EXISTS bench.raw_copy`)
	start := time.Now()
	tx, err := s.r.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, pq.CopyInSchema("bench", "raw_copy",
		"tenant_id", "account_id", "number", "object", "issued_on", "due_on", "amount_cents"))
	if err != nil {
		return 0, err
	}
	for k := f.from; k < f.from+f.n; k++ {
		r := f.c.row(k)
		if _, err := stmt.ExecContext(ctx, f.c.t.ID, ids[r.payer], r.number, r.object,
			r.issued.Format(time.DateOnly), r.due().Format(time.DateOnly), r.cents); err != nil {
			return 0, err
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil {
		return 0, err
	}
	if err := stmt.Close(); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// num writes 1234567 as "1,234,567".
func num(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
