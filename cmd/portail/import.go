package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/riverqueue/river"
	"github.com/schollz/progressbar/v3"

	"portail/pkg/app"
	"portail/pkg/config"
	"portail/pkg/imports"
	"portail/pkg/jobs"
)

const importUsage = `usage:
  portail import payers   --tenant SLUG payers.csv
  portail import invoices --tenant SLUG invoices.csv [pdfs.zip]`

// importPoll is how often the CLI reads its batch's progress.
const importPoll = 200 * time.Millisecond

// runImport stages the billing software's files through the same pipeline
// as the API and the staff screens, works the import job in this process
// (a running server may take it first: the batch row tells either way),
// draws its progress from the batch row and prints the report on out.
// A refused file, a failed import or rejected payers lines are an error
// (exit code 1).
func runImport(ctx context.Context, cfg config.Config, log *slog.Logger, args []string, out, progress io.Writer) error {
	if len(args) == 0 || (args[0] != "payers" && args[0] != "invoices") {
		return errors.New(importUsage)
	}
	kind := imports.Kind(args[0])
	fs := flag.NewFlagSet("import "+args[0], flag.ContinueOnError)
	slug := fs.String("tenant", "", "commune (slug)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	files := fs.Args()
	if *slug == "" || len(files) < 1 || (kind == imports.KindPayers && len(files) != 1) || len(files) > 2 {
		return errors.New(importUsage)
	}
	// The job's transaction, its progress, River and the progress bar.
	d, err := openDB(ctx, cfg, 8)
	if err != nil {
		return err
	}
	defer d.Close()
	a, err := app.New(ctx, cfg, d, log, app.Options{})
	if err != nil {
		return err
	}
	t, err := a.Tenants.BySlug(ctx, *slug)
	if err != nil {
		return fmt.Errorf("commune %q: %w", *slug, err)
	}

	rep, err := stageFiles(ctx, a.Imports, t.ID, kind, files)
	if err != nil {
		return err
	}
	if !rep.Status.Done() {
		worker, err := importWorker(ctx, a, log)
		if err != nil {
			return err
		}
		defer func() {
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			worker.StopAndCancel(stopCtx)
		}()
		if rep, err = followImport(ctx, a.Imports, t.ID, rep, progress); err != nil {
			return err
		}
	}
	printReport(out, files[0], rep)
	switch {
	case rep.Status == imports.StatusRejected:
		return fmt.Errorf("%s : fichier refusé", files[0])
	case rep.Status == imports.StatusFailed:
		return fmt.Errorf("%s : l'import a échoué", files[0])
	case rep.Rejected > 0:
		return fmt.Errorf("%s : %d lignes refusées", files[0], rep.Rejected)
	}
	return nil
}

// stageFiles reads the files into a staging of the pipeline and commits it.
func stageFiles(ctx context.Context, s *imports.Service, tenantID int64, kind imports.Kind, files []string) (imports.Report, error) {
	st := s.NewStaging(tenantID, kind, imports.Actor{Kind: imports.ActorCLI})
	defer st.Close()
	read := func(path string, into func(string, io.Reader) error) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return into(filepath.Base(path), f)
	}
	if err := read(files[0], st.ReadCSV); err != nil {
		return imports.Report{}, err
	}
	if len(files) == 2 {
		if err := read(files[1], st.ReadZIP); err != nil {
			return imports.Report{}, err
		}
	}
	rep, err := st.Commit(ctx)
	if errors.Is(err, imports.ErrStorage) {
		return rep, fmt.Errorf("stockage des fichiers indisponible, rien n'a été enregistré : %w", err)
	}
	return rep, err
}

// importWorker starts a River client that works import jobs only.
func importWorker(ctx context.Context, a *app.App, log *slog.Logger) (*jobs.Client, error) {
	workers := river.NewWorkers()
	river.AddWorker(workers, &imports.Worker{Service: a.Imports})
	c, err := jobs.New(a.DB, jobs.Options{Workers: workers, Queues: map[string]int{imports.Queue: 1}, OnlyQueues: true,
		PollInterval: importPoll, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		return nil, fmt.Errorf("jobs: start: %w", err)
	}
	return c, nil
}

// followImport draws the batch's progress until it is done.
func followImport(ctx context.Context, s *imports.Service, tenantID int64, rep imports.Report, w io.Writer) (imports.Report, error) {
	label := "Import des factures"
	if rep.Kind == imports.KindPayers {
		label = "Import des redevables"
	}
	bar := progressbar.NewOptions(max(rep.Progress.Total, 1),
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetItsString("lignes"),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	tick := time.NewTicker(importPoll)
	defer tick.Stop()
	lastError := ""
	for {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-tick.C:
		}
		b, err := s.Batch(ctx, tenantID, rep.BatchID)
		if err != nil {
			return rep, err
		}
		if total := max(b.LinesTotal, b.LinesDone); total > bar.GetMax() {
			bar.ChangeMax(total)
		}
		if b.Error != "" && b.Error != lastError {
			lastError = b.Error
			fmt.Fprintf(w, "\n%s\n", b.Error)
		}
		if b.Status.Done() {
			if b.Status == imports.StatusImported {
				bar.ChangeMax(max(b.Lines, 1))
				bar.Set(max(b.Lines, 1))
			} else {
				bar.Exit()
				fmt.Fprintln(w)
			}
			return s.Report(ctx, tenantID, rep.BatchID, 0, reportLines)
		}
		bar.Set(b.LinesDone)
	}
}

// reportLines is how many rejected lines the CLI prints.
const reportLines = 100

// printReport writes the outcome in French.
func printReport(w io.Writer, name string, rep imports.Report) {
	switch rep.Status {
	case imports.StatusDuplicate:
		fmt.Fprintf(w, "%s : déjà importé (lot %d), rien n'a changé\n", name, rep.DuplicateOf)
		return
	case imports.StatusFailed:
		fmt.Fprintf(w, "%s : l'import a échoué (lot %d) : %s\n", name, rep.BatchID, rep.Error)
		return
	case imports.StatusRejected:
		fmt.Fprintf(w, "%s : fichier refusé, rien n'a été importé (lot %d) : %d lignes en erreur sur %d\n",
			name, rep.BatchID, rep.Rejected, rep.Lines)
	case imports.StatusImported:
		rate := ""
		// A rate only means something over a measurable time.
		if d := rep.Duration(); d >= 100*time.Millisecond && rep.Lines > 0 {
			rate = fmt.Sprintf(" en %s (%.0f lignes/s)", d.Round(time.Millisecond), float64(rep.Lines)/d.Seconds())
		}
		if rep.Kind == imports.KindInvoices {
			fmt.Fprintf(w, "%s : %d lignes%s : %d créées, %d mises à jour, %d inchangées, %d PDF, %d alertes (lot %d)\n",
				name, rep.Lines, rate, rep.Inserted, rep.Updated, rep.Unchanged, rep.PDFs, rep.Alerts, rep.BatchID)
		} else {
			fmt.Fprintf(w, "%s : %d lignes%s : %d créés, %d mis à jour, %d inchangés, %d lignes refusées (lot %d)\n",
				name, rep.Lines, rate, rep.Inserted, rep.Updated, rep.Unchanged, rep.Rejected, rep.BatchID)
		}
		for _, l := range rep.Notes {
			fmt.Fprintf(w, "  ligne %d : %s (remarque)\n", l.Line, l.Reason)
		}
	default:
		fmt.Fprintf(w, "%s : %s (lot %d)\n", name, rep.Status, rep.BatchID)
	}
	for _, l := range rep.Errors {
		if l.Line > 0 {
			fmt.Fprintf(w, "  ligne %d : %s\n", l.Line, l.Reason)
		} else {
			fmt.Fprintf(w, "  %s\n", l.Reason)
		}
	}
	if more := rep.Rejected - len(rep.Errors); more > 0 && len(rep.Errors) > 0 {
		fmt.Fprintf(w, "  … et %d autres lignes refusées\n", more)
	}
}
