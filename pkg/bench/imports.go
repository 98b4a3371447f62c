package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"portail/pkg/apikey"
	"portail/pkg/pgcluster"
)

// Imports sent to the running server through the API, its peak RSS
// measured during each: a one-line CSV of 60 MB and of 240 MB (refused:
// a line is at most 64 KiB), a 512 MiB file of normal lines (refused:
// more than the 2,000,000 lines a file may hold, counted while it is
// uploaded), and a file of 1,000,000 lines that the import job applies in
// the server, followed through GET /api/v1/imports/{id}. The files are
// generated as they are sent: nothing is written to disk on this side.

// importMemoryRow is one upload and what it cost the server.
type importMemoryRow struct {
	label   string
	bytes   int64
	status  int    // HTTP status of the upload
	outcome string // the batch's final status
	reason  string // first rejected line, or the counts
	want    string // the expected outcome
	elapsed time.Duration
	peakRSS int64
	err     string
}

func (r importMemoryRow) ok() bool {
	return r.err == "" && r.outcome == r.want && r.peakRSS > 0 && r.peakRSS <= targetRSS
}

// importMemoryRows runs the uploads against a server process of their own,
// started idle, so that its peak RSS is theirs.
func (r *run) importMemoryRows(ctx context.Context, c *commune) error {
	port, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	srv, err := r.startServer(ctx, "imports", port, port)
	if err != nil {
		return err
	}
	defer srv.stop()
	_, idle := srv.memory()
	r.progress("server for the imports: pid %d, RSS %s", srv.pid(), mb(idle))
	if r.rep.importMemory, err = r.importMemory(ctx, srv, c); err != nil {
		return err
	}
	srv.stop()
	if n := srv.errors.Load(); n > 0 {
		r.rep.notes = append(r.rep.notes, fmt.Sprintf("the imports' server logged %d errors (see %s)", n, filepath.Join(r.dir, "imports.log")))
	}
	return nil
}

// importMemory runs the uploads against srv as the billing software of c.
func (r *run) importMemory(ctx context.Context, srv *server, c *commune) ([]importMemoryRow, error) {
	key, _, err := (&apikey.Store{DB: r.db}).Create(ctx, c.t.ID, "bench: imports")
	if err != nil {
		return nil, err
	}
	const mib = 1 << 20
	uploads := []struct {
		label string
		body  func() (io.Reader, int64)
		want  string
	}{
		{"60 MB in one line", func() (io.Reader, int64) { return oneLine(60 * 1000 * 1000) }, "rejected"},
		{"240 MB in one line", func() (io.Reader, int64) { return oneLine(240 * 1000 * 1000) }, "rejected"},
		{"512 MiB of normal lines", func() (io.Reader, int64) { return normalLines(c, 512*mib, 0) }, "rejected"},
		{"1,000,000 lines (job)", func() (io.Reader, int64) { return normalLines(c, 0, 1_000_000) }, "imported"},
	}
	client := &http.Client{Timeout: 30 * time.Minute}
	var rows []importMemoryRow
	for _, u := range uploads {
		body, size := u.body()
		w := watchRSS(srv)
		start := time.Now()
		row := importMemoryRow{label: u.label, bytes: size, want: u.want}
		row.status, row.outcome, row.reason, row.err = uploadAndFollow(ctx, client, srv.url(""), c.host, key, body)
		row.elapsed = time.Since(start)
		row.peakRSS = w.peak()
		r.progress("import via the API, %s: HTTP %d, %s (%s) in %s, server peak RSS %s",
			u.label, row.status, row.outcome, clip(row.reason, 80), row.elapsed.Round(time.Millisecond), mb(row.peakRSS))
		rows = append(rows, row)
	}
	return rows, nil
}

// uploadAndFollow posts body as the "csv" part of an invoices import and,
// when it is accepted, follows the batch to its end.
func uploadAndFollow(ctx context.Context, c *http.Client, base, host, key string, body io.Reader) (status int, outcome, reason, failure string) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		fw, _ := mw.CreateFormFile("csv", "bench.csv")
		if _, err := io.Copy(fw, body); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(mw.Close())
	}()
	call := func(method, path string, body io.Reader, contentType string) (int, map[string]any, http.Header, error) {
		req, err := http.NewRequestWithContext(ctx, method, base+path, body)
		if err != nil {
			return 0, nil, nil, err
		}
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+key)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		res, err := c.Do(req)
		if err != nil {
			return 0, nil, nil, err
		}
		defer res.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&out); err != nil {
			return res.StatusCode, nil, res.Header, fmt.Errorf("answer is not JSON: %w", err)
		}
		return res.StatusCode, out, res.Header, nil
	}
	status, out, header, err := call(http.MethodPost, "/api/v1/imports/invoices", pr, mw.FormDataContentType())
	if err != nil {
		return status, "", "", err.Error()
	}
	if status == http.StatusUnprocessableEntity {
		e, _ := out["error"].(map[string]any)
		rep, _ := e["details"].(map[string]any)
		return status, fmt.Sprint(rep["status"]), fmt.Sprint(e["message"]), ""
	}
	if status != http.StatusAccepted {
		return status, "", "", fmt.Sprintf("unexpected answer %v", out)
	}
	for {
		select {
		case <-ctx.Done():
			return status, "", "", ctx.Err().Error()
		case <-time.After(500 * time.Millisecond):
		}
		_, rep, _, err := call(http.MethodGet, header.Get("Location"), nil, "")
		if err != nil {
			return status, "", "", err.Error()
		}
		switch s := fmt.Sprint(rep["status"]); s {
		case "queued", "running":
			continue
		case "imported":
			return status, s, fmt.Sprintf("%.0f lines, %.0f created", rep["lines"], rep["inserted"]), ""
		default:
			errs, _ := rep["errors"].([]any)
			if len(errs) > 0 {
				first, _ := errs[0].(map[string]any)
				reason = fmt.Sprint(first["reason"])
			}
			return status, s, reason, fmt.Sprint(rep["error"])
		}
	}
}

// oneLine is a CSV file whose second line is n bytes long.
func oneLine(n int64) (io.Reader, int64) {
	head := "numero;reference;objet;date;echeance;montant\n"
	return io.MultiReader(strings.NewReader(head), io.LimitReader(repeat('x'), n)), int64(len(head)) + n
}

type repeat byte

func (b repeat) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}

// normalLines is an invoices file of c's payers: size bytes, or n lines.
func normalLines(c *commune, size int64, n int) (io.Reader, int64) {
	g := &lineGen{c: c, n: n}
	if size > 0 {
		return io.LimitReader(g, size), size
	}
	return g, 0
}

// lineGen writes invoice lines as they are read.
type lineGen struct {
	c       *commune
	n, i    int
	started bool
	buf     []byte
}

func (g *lineGen) Read(p []byte) (int, error) {
	for len(g.buf) < len(p) {
		if !g.started {
			g.started = true
			g.buf = append(g.buf, "numero;reference;objet;date;echeance;montant\n"...)
			continue
		}
		if g.n > 0 && g.i >= g.n {
			break
		}
		g.i++
		row := g.c.row(g.i)
		row.number = "API-" + strconv.Itoa(g.i)
		g.buf = row.csv(g.buf)
	}
	if len(g.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(p, g.buf)
	g.buf = g.buf[:copy(g.buf, g.buf[n:])]
	return n, nil
}

// printImportMemory writes the rows of importMemory: the upload's size and
// time, its answer and outcome, the server's peak RSS.
func (rep *report) printImportMemory(w io.Writer) {
	for _, row := range rep.importMemory {
		size := "gen."
		if row.bytes > 0 {
			size = mb(row.bytes)
		}
		what := fmt.Sprintf("  HTTP %d → %s: %s", row.status, row.outcome, row.reason)
		if row.err != "" {
			what = "  " + row.err
		}
		fmt.Fprintf(w, "%-14s %-27s %7s %8s %-55s │ %-27s %8s %8s %6s │ %-27s %s\n",
			"import memory", row.label, size, row.elapsed.Round(100*time.Millisecond), clip(what, 55),
			"server peak RSS", mb(row.peakRSS), "", "", clip(row.want+", RSS ≤ 150 MB", 27), verdict(row.ok()))
	}
}
