package imports

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"portail/pkg/blob"
	"portail/pkg/db"
	"portail/pkg/dbtest"
	"portail/pkg/invoice"
	"portail/pkg/jobs"
)

// workJobs starts a River client that works import jobs with n workers.
func (f *fixture) workJobs(t *testing.T, n int) {
	t.Helper()
	workers := river.NewWorkers()
	river.AddWorker(workers, &Worker{Service: f.s})
	c, err := jobs.New(f.d, jobs.Options{Workers: workers, Queues: map[string]int{Queue: n}, OnlyQueues: true,
		PollInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.StopAndCancel(ctx)
	})
}

// stage uploads an invoices file as the API does: staged, with its job.
func (f *fixture) stage(t testing.TB, csv string, z []byte) Report {
	t.Helper()
	st := f.s.NewStaging(f.t.ID, KindInvoices, Actor{Kind: ActorAPIKey, ID: 1})
	if err := st.ReadCSV("factures.csv", strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	if z != nil {
		if err := st.ReadZIP("pdfs.zip", bytes.NewReader(z)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := st.Commit(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// waitFor polls the batch until cond holds.
func (f *fixture) waitFor(t *testing.T, id int64, what string, cond func(*Batch) bool) *Batch {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b, err := f.s.Batch(f.ctx, f.t.ID, id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %d never %s: %+v", id, what, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func done(b *Batch) bool { return b.Status.Done() }

// The same file uploaded twice at once: one upload applies it, the other
// ends as a duplicate of it.
func TestSameFileUploadedTwiceAtOnce(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	var b strings.Builder
	b.WriteString(header)
	for i := range 5000 {
		fmt.Fprintf(&b, "C-%d;SISTEC560;x;10/07/2017;21/07/2017;1,00\n", i)
	}
	reps := make([]Report, 2)
	var wg sync.WaitGroup
	for i := range reps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reps[i] = f.stage(t, b.String(), nil)
		}()
	}
	wg.Wait()
	if reps[0].Status != StatusQueued || reps[1].Status != StatusQueued {
		t.Fatalf("both uploads are queued before either is applied: %+v", reps)
	}
	f.workJobs(t, 2)
	b0 := f.waitFor(t, reps[0].BatchID, "done", done)
	b1 := f.waitFor(t, reps[1].BatchID, "done", done)
	imported, dup := b0, b1
	if b1.Status == StatusImported {
		imported, dup = b1, b0
	}
	if imported.Status != StatusImported || imported.Inserted != 5000 || dup.Status != StatusDuplicate ||
		dup.DuplicateOf == nil || *dup.DuplicateOf != imported.ID || dup.Inserted != 0 {
		t.Fatalf("imported %+v\nduplicate %+v", imported, dup)
	}
	if n := count(t, f.d, `SELECT count(*) FROM invoices`); n != 5000 {
		t.Fatalf("%d invoices", n)
	}
	if len(emails(t, f.d)) != 1 {
		t.Fatalf("%d alerts", len(emails(t, f.d)))
	}
	rep, _ := f.s.Report(f.ctx, f.t.ID, dup.ID, 0, 10)
	if !rep.AlreadyImported || rep.DuplicateOf != imported.ID {
		t.Fatalf("duplicate report %+v", rep)
	}
}

// The job records its stage and the lines read on the batch row as it goes.
func TestImportJobRecordsProgress(t *testing.T) {
	f := newFixture(t)
	f.account(t, "P1", "Payeur")
	f.s.Limits.ProgressEvery = time.Nanosecond
	const n = 20_000
	var b strings.Builder
	b.WriteString(header)
	for i := range n {
		fmt.Fprintf(&b, "G-%d;P1;x;10/07/2017;21/07/2017;1,00\n", i)
	}
	rep := f.stage(t, b.String(), nil)
	if rep.Progress.Total != n || rep.Progress.Done != 0 || rep.Progress.Stage != StageQueued {
		t.Fatalf("queued %+v", rep.Progress)
	}
	type seen struct {
		stage string
		done  int
	}
	var rows []seen
	f.s.onProgress = func(string, int) {
		// What an uploader polling the batch reads at this moment.
		bt, err := f.s.Batch(f.ctx, f.t.ID, rep.BatchID)
		if err != nil {
			t.Error(err)
			return
		}
		rows = append(rows, seen{bt.Stage, bt.LinesDone})
	}
	final, err := f.s.Apply(f.ctx, f.t.ID, rep.BatchID)
	if err != nil || final.Status != StatusImported || final.Progress.Done != n || final.Progress.Total != n || final.Progress.Stage != StageDone {
		t.Fatalf("%v %+v", err, final)
	}
	var partial bool
	var stages []string
	for i, r := range rows {
		if i > 0 && r.done < rows[i-1].done {
			t.Fatalf("progress went back: %+v", rows)
		}
		if r.stage == StageReading && r.done > 0 && r.done < n {
			partial = true
		}
		if len(stages) == 0 || stages[len(stages)-1] != r.stage {
			stages = append(stages, r.stage)
		}
	}
	if !partial || strings.Join(stages, ",") != "reading,checking,applying" {
		t.Fatalf("progress seen: %d writes, stages %v, partial %v", len(rows), stages, partial)
	}
}

// S3 down while the job runs: the attempt fails and says why on the batch,
// nothing is imported; River tries again and the import goes through once
// S3 is back. After the last attempt the batch is failed.
func TestImportJobRetriesWhileS3IsDown(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	rep := f.stage(t, csvOf(manualLine), zipOf(t, map[string][]byte{"2017-020-002059.pdf": fakePDF("x")}))
	before := snapshot(t, f.d)
	f.s3.stop()
	f.workJobs(t, 1)
	b := f.waitFor(t, rep.BatchID, "retrying", func(b *Batch) bool { return b.Attempts >= 1 && b.Status == StatusQueued })
	if !strings.Contains(b.Error, "Stockage des fichiers indisponible") || !strings.Contains(b.Error, "nouvelle tentative") {
		t.Fatalf("batch %+v", b)
	}
	var state string
	if err := f.d.Get(&state, `SELECT state FROM river_job WHERE kind = 'import_batch'`); err != nil || (state != "retryable" && state != "available" && state != "running") {
		t.Fatalf("job state %q %v", state, err)
	}
	if snapshot(t, f.d) != before {
		t.Fatal("rows written while S3 was down")
	}
	f.s3.start()
	b = f.waitFor(t, rep.BatchID, "done", done)
	if b.Status != StatusImported || b.Inserted != 1 || b.PDFs != 1 || b.Error != "" || b.Attempts < 2 {
		t.Fatalf("after S3 came back: %+v", b)
	}

	// The last attempt fails the batch.
	rep = f.stage(t, csvOf("2017-020-002060;SISTEC560;x;10/07/2017;21/07/2017;1,00"), nil)
	f.s3.stop()
	defer f.s3.start()
	w := &Worker{Service: f.s}
	job := &river.Job[JobArgs]{JobRow: &rivertype.JobRow{Attempt: MaxAttempts, MaxAttempts: MaxAttempts},
		Args: JobArgs{TenantID: f.t.ID, BatchID: rep.BatchID}}
	if err := w.Work(f.ctx, job); err == nil || !errors.Is(err, ErrStorage) {
		t.Fatalf("work with S3 down: %v", err)
	}
	failed, _ := f.s.Report(f.ctx, f.t.ID, rep.BatchID, 0, 10)
	if failed.Status != StatusFailed || failed.FinishedAt == nil || !strings.Contains(failed.Error, "rien n'a été importé") {
		t.Fatalf("failed %+v", failed)
	}
	if n := count(t, f.d, `SELECT count(*) FROM invoices`); n != 1 {
		t.Fatalf("%d invoices", n)
	}
}

// S3 down during the upload: refused cleanly, nothing recorded.
func TestUploadWithS3Down(t *testing.T) {
	f := newFixture(t)
	f.account(t, "SISTEC560", "Test SISTEC560")
	f.s3.stop()
	st := f.s.NewStaging(f.t.ID, KindInvoices, Actor{Kind: ActorCLI})
	if err := st.ReadCSV("f.csv", strings.NewReader(csvOf(manualLine))); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Commit(f.ctx); !errors.Is(err, ErrStorage) || !strings.HasPrefix(err.Error(), "imports: ") {
		t.Fatalf("commit with S3 down: %v", err)
	}
	if n := count(t, f.d, `SELECT count(*) FROM import_batches`) + count(t, f.d, `SELECT count(*) FROM river_job`); n != 0 {
		t.Fatalf("%d rows recorded while S3 was down", n)
	}
	f.s3.start()
	if rep := f.mustImport(t, csvOf(manualLine), nil); rep.Inserted != 1 {
		t.Fatalf("once S3 is back: %+v", rep)
	}
}

// A file over the line limit, or with a line over the bound, is refused
// while it is uploaded, without reading the rest; nothing is staged in S3.
func TestUploadRefusedWithoutReadingFurther(t *testing.T) {
	f := newFixture(t)
	f.s.Limits.MaxLines = 1000
	big := bigFile(100_000, 10, "X-")
	src := &countingReader{r: bytes.NewReader(big)}
	st := f.s.NewStaging(f.t.ID, KindInvoices, Actor{Kind: ActorCLI})
	if err := st.ReadCSV("gros.csv", src); err != nil {
		t.Fatal(err)
	}
	rep, err := st.Commit(f.ctx)
	if err != nil || rep.Status != StatusRejected || !strings.Contains(rep.Errors[0].Reason, "plus de 1000 lignes") {
		t.Fatalf("%v %+v", err, rep)
	}
	if src.n > int64(len(big)/10) {
		t.Fatalf("read %d of %d bytes to refuse it", src.n, len(big))
	}
	st = f.s.NewStaging(f.t.ID, KindInvoices, Actor{Kind: ActorCLI})
	endlessLine := &countingReader{r: io.MultiReader(strings.NewReader(header), &endless{pattern: []byte("0123456789;")})}
	if err := st.ReadCSV("une-ligne.csv", endlessLine); err != nil {
		t.Fatal(err)
	}
	rep, err = st.Commit(f.ctx)
	if err != nil || rep.Status != StatusRejected || !strings.Contains(rep.Errors[0].Reason, "Ligne 2 trop longue") {
		t.Fatalf("%v %+v", err, rep)
	}
	if endlessLine.n > 1<<20 {
		t.Fatalf("read %d bytes of an endless line", endlessLine.n)
	}
	if keys := f.s3.keys(fmt.Sprintf("t/%d/", f.t.ID)); len(keys) != 0 {
		t.Fatalf("refused files staged: %v", keys)
	}
}

// bigFile writes an invoice file of n lines spread over payers P1…Ppayers.
func bigFile(n, payers int, prefix string) []byte {
	var b bytes.Buffer
	b.Grow(n * 64)
	b.WriteString("numero;reference;objet;date;echeance;montant\n")
	line := make([]byte, 0, 128)
	for i := range n {
		line = append(line[:0], prefix...)
		line = strconv.AppendInt(line, int64(i), 10)
		line = append(line, ";P"...)
		line = strconv.AppendInt(line, int64(i%payers+1), 10)
		line = append(line, ";Restauration scolaire;"...)
		day := i%28 + 1
		if day < 10 {
			line = append(line, '0')
		}
		line = strconv.AppendInt(line, int64(day), 10)
		line = append(line, "/07/2017;31/07/2017;"...)
		line = strconv.AppendInt(line, int64(i%50000+100), 10)
		line = append(line, ",11\n"...)
		b.Write(line)
	}
	return b.Bytes()
}

func createPayers(t testing.TB, d *sqlx.DB, tenantID int64, n int) {
	t.Helper()
	_, err := d.Exec(`
		INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		SELECT $1, 'P' || g, 'Payeur ' || g, 'p' || g || '@example.fr', 'active'
		FROM generate_series(1, $2) g`, tenantID, n)
	if err != nil {
		t.Fatal(err)
	}
}

// PostgreSQL killed in the middle of an import job, at three stages; the
// batch applied again after the restart leaves every line exactly once.
func TestImportSurvivesPostgresCrash(t *testing.T) {
	cluster := dbtest.Cluster(t)
	if cluster == nil {
		t.Skip("PORTAIL_TEST_DATABASE_URL is set: the shared server cannot be killed")
	}
	ctx := context.Background()
	url := dbtest.NewURL(t)
	open := func() *sqlx.DB {
		d, err := db.Open(ctx, url, 10)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	f := fixtureOn(t, d, startS3(t), "sistec")
	f.s.Limits.ProgressEvery = time.Millisecond
	const n = 200_000
	createPayers(t, d, f.t.ID, 500)
	file := string(bigFile(n, 500, "K-"))
	staged, err := f.s.ImportNow(ctx, f.t.ID, KindInvoices, Actor{}, File{Name: "x.csv", Body: strings.NewReader(header)}, nil)
	if err != nil || staged.Status != StatusRejected {
		t.Fatal(err)
	}
	st := f.s.NewStaging(f.t.ID, KindInvoices, Actor{Kind: ActorCLI})
	if err := st.ReadCSV("k.csv", strings.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	if staged, err = st.CommitForApply(ctx); err != nil {
		t.Fatal(err)
	}
	// The test cluster runs with synchronous_commit=off: make the setup
	// durable, or the kill could take it away along with the import.
	if _, err := d.Exec(`CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	for _, stage := range []string{"copy", "merged", "commit"} {
		var once sync.Once
		kill := func() {
			once.Do(func() {
				if err := cluster.Kill(); err != nil {
					t.Errorf("kill: %v", err)
				}
			})
		}
		s := *f.s
		if stage == "copy" {
			s.onProgress = func(_ string, done int) {
				if done >= n/2 {
					kill()
				}
			}
		} else {
			s.hook = func(s string) {
				if s == stage {
					kill()
				}
			}
		}
		rep, err := s.Apply(ctx, f.t.ID, staged.BatchID)
		if err == nil {
			t.Fatalf("%s: import survived the kill: %+v", stage, rep)
		}
		t.Logf("killed at %s: %v", stage, err)
		d.Close()
		if err := cluster.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		d = open()
		f.d, f.s.DB = d, d
		if got := count(t, d, `SELECT count(*) FROM invoices`); got != 0 {
			t.Fatalf("%s: %d invoices after the crash", stage, got)
		}
		if got := count(t, d, `SELECT count(*) FROM import_batches WHERE status = 'imported'`); got != 0 {
			t.Fatalf("%s: %d imported batches after the crash", stage, got)
		}
	}
	defer d.Close()
	rep, err := f.s.Apply(ctx, f.t.ID, staged.BatchID)
	if err != nil || rep.Status != StatusImported || rep.Inserted != n || rep.Attempts != 4 {
		t.Fatalf("re-run: %v %+v", err, rep)
	}
	if got := count(t, d, `SELECT count(DISTINCT number) FROM invoices WHERE number LIKE 'K-%'`); got != n {
		t.Fatalf("%d distinct invoices", got)
	}
	if got := count(t, d, `SELECT count(*) FROM invoices`); got != n {
		t.Fatalf("%d invoices", got)
	}
	// Applying it again does nothing; uploading it again is a duplicate.
	if again, err := f.s.Apply(ctx, f.t.ID, staged.BatchID); err != nil || again.Status != StatusImported || again.Attempts != 4 {
		t.Fatalf("applied twice: %v %+v", err, again)
	}
	if again, err := f.importNow(t, file, nil); err != nil || !again.AlreadyImported {
		t.Fatalf("third run: %v %+v", err, again)
	}
}

func TestImportPDFsThroughS3(t *testing.T) {
	f := newFixture(t)
	acc := f.account(t, "SISTEC560", "Test SISTEC560")
	manual := invoice.Invoice{Number: "2017-020-002059", Object: "Multi Services", AmountCents: 24311}
	manual.IssuedOn, _ = invoice.ParseDate("10/07/2017")
	manual.DueOn, _ = invoice.ParseDate("21/07/2017")
	pdf, err := invoice.GenerateInvoicePDF(f.t, manual, "Test SISTEC560")
	if err != nil {
		t.Fatal(err)
	}
	second, _ := invoice.GenerateInvoicePDF(f.t, invoice.Invoice{Number: "2017-020-002060", AmountCents: 100}, "Test SISTEC560")
	file := csvOf(manualLine, "2017-020-002060;SISTEC560;Cantine;10/07/2017;21/07/2017;1,00")
	pdfs := zipOf(t, map[string][]byte{"2017-020-002059.pdf": pdf, "2017-020-002060.pdf": second})

	// Stopped after the upload, before the commit: nothing is committed, and
	// the re-run finds the objects already there (content-addressed) and goes on.
	staged := f.stage(t, file, pdfs)
	ctx, cancel := context.WithCancel(context.Background())
	s := *f.s
	s.hook = func(stage string) {
		if stage == "uploaded" {
			cancel()
		}
	}
	if _, err := s.Apply(ctx, f.t.ID, staged.BatchID); err == nil {
		t.Fatal("cancelled import succeeded")
	}
	if n := count(t, f.d, `SELECT count(*) FROM invoices`); n != 0 {
		t.Fatalf("%d invoices after a cancelled import", n)
	}
	if keys := f.s3.keys(fmt.Sprintf("t/%d/invoices/", f.t.ID)); len(keys) != 2 {
		t.Fatalf("uploaded before the cancel: %v", keys)
	}
	rep, err := f.s.Apply(f.ctx, f.t.ID, staged.BatchID)
	if err != nil || rep.Inserted != 2 || rep.PDFs != 2 {
		t.Fatalf("%v %+v", err, rep)
	}
	inv := f.invoiceByNumber(t, "2017-020-002059")
	got, err := (&invoice.Store{DB: f.d}).Get(f.ctx, f.t.ID, acc, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	rc, size, err := invoice.OpenPDF(f.ctx, f.s3.store, got)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(b, pdf) || (size != -1 && size != int64(len(pdf))) {
		t.Fatalf("PDF read back: %d bytes, size %d, %v", len(b), size, err)
	}

	// A corrected PDF gets a new key; the old object is kept, never overwritten.
	pdf2 := append(bytes.Clone(pdf), "% corrigé\n"...)
	rep = f.mustImport(t, csvOf(manualLine), zipOf(t, map[string][]byte{"2017-020-002059.pdf": pdf2}))
	if rep.Updated != 1 || rep.PDFs != 1 {
		t.Fatalf("report %+v", rep)
	}
	updated := f.invoiceByNumber(t, "2017-020-002059")
	if updated.PDFKey == inv.PDFKey || updated.PDFSize != int64(len(pdf2)) {
		t.Fatalf("updated %+v", updated)
	}
	if keys := f.s3.keys(fmt.Sprintf("t/%d/invoices/", f.t.ID)); len(keys) != 3 {
		t.Fatalf("keys %v", keys)
	}

	// Tampered bytes in the store: the stream fails instead of ending.
	tamper(t, f.s3.dir, updated.PDFSHA256+".pdf")
	rc, _, err = invoice.OpenPDF(f.ctx, f.s3.store, updated)
	if err == nil {
		_, err = io.ReadAll(rc)
		rc.Close()
	}
	if !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("tampered PDF: %v", err)
	}

	// A staged file tampered with before its job runs is never applied.
	staged = f.stage(t, csvOf("2017-020-002061;SISTEC560;Cantine;10/07/2017;21/07/2017;1,00"), nil)
	tamper(t, f.s3.dir, fmt.Sprintf("imports/%d/invoices.csv", staged.BatchID))
	if _, err := f.s.Apply(f.ctx, f.t.ID, staged.BatchID); !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("tampered staged file: %v", err)
	}
	// The job gives up at once: the bytes will not change back.
	w := &Worker{Service: f.s}
	job := &river.Job[JobArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: MaxAttempts},
		Args: JobArgs{TenantID: f.t.ID, BatchID: staged.BatchID}}
	if err := w.Work(f.ctx, job); !errors.Is(err, blob.ErrChecksumMismatch) {
		t.Fatalf("work on a tampered file: %v", err)
	}
	failed, _ := f.s.Report(f.ctx, f.t.ID, staged.BatchID, 0, 10)
	if failed.Status != StatusFailed || !strings.Contains(failed.Error, "altéré") ||
		count(t, f.d, `SELECT count(*) FROM invoices WHERE number = '2017-020-002061'`) != 0 {
		t.Fatalf("a tampered staged file: %+v", failed)
	}
}

// tamper flips a byte of the stored object whose path ends with suffix.
func tamper(t *testing.T, dir, suffix string) {
	t.Helper()
	var path string
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(filepath.ToSlash(p), suffix) && !strings.Contains(p, "metadata") {
			path = p
		}
		return nil
	})
	if path == "" {
		t.Fatalf("object %s not found on disk", suffix)
	}
	raw, _ := os.ReadFile(path)
	raw[len(raw)/2] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkImport applies staged files of 200,000 lines to fresh tenants
// and reports lines/s; the raw_copy sub-benchmark COPYs the same, already
// parsed rows into a table shaped like invoices (same indexes and checks,
// no foreign key): the ceiling to compare with.
func BenchmarkImport(b *testing.B) {
	const n = 200_000
	d := dbtest.New(b)
	store := startS3(b)
	file := bigFile(n, 1000, "B-")
	b.Run("import", func(b *testing.B) {
		var total time.Duration
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			f := fixtureOn(b, d, store, "bench"+strconv.Itoa(i))
			createPayers(b, d, f.t.ID, 1000)
			st := f.s.NewStaging(f.t.ID, KindInvoices, Actor{})
			if err := st.ReadCSV("b.csv", bytes.NewReader(file)); err != nil {
				b.Fatal(err)
			}
			staged, err := st.CommitForApply(f.ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			start := time.Now()
			rep, err := f.s.Apply(f.ctx, f.t.ID, staged.BatchID)
			total += time.Since(start)
			if err != nil || rep.Inserted != n {
				b.Fatalf("%v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "lines/s")
	})
	b.Run("raw_copy", func(b *testing.B) {
		lines, _, problem := parseInvoices(file)
		if problem != "" {
			b.Fatal(problem)
		}
		var total time.Duration
		for b.Loop() {
			start := time.Now()
			err := db.InTx(context.Background(), d, func(tx *sqlx.Tx) error {
				if _, err := tx.Exec(`CREATE TEMP TABLE raw_copy (LIKE invoices INCLUDING ALL) ON COMMIT DROP`); err != nil {
					return err
				}
				stmt, err := tx.Prepare(pq.CopyIn("raw_copy", "tenant_id", "account_id", "number", "object", "issued_on", "due_on", "amount_cents"))
				if err != nil {
					return err
				}
				for i, l := range lines {
					if _, err := stmt.Exec(int64(1), int64(i%1000+1), l.Number, l.Object,
						l.IssuedOn.Format(time.DateOnly), l.DueOn.Format(time.DateOnly), l.AmountCents); err != nil {
						return err
					}
				}
				if _, err := stmt.Exec(); err != nil {
					return err
				}
				return stmt.Close()
			})
			total += time.Since(start)
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/total.Seconds(), "lines/s")
	})
}
