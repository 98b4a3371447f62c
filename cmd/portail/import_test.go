package main

import (
	"archive/zip"
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portail/pkg/blob"
	"portail/pkg/config"
	"portail/pkg/db"
	"portail/pkg/dbtest"
	"portail/pkg/devenv"
	"portail/pkg/tenant"
)

// importEnv is a migrated database with the demo communes and an S3 server.
func importEnv(t *testing.T) config.Config {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database.URL = dbtest.NewURL(t)
	s3, err := devenv.StartS3(t.TempDir(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s3.Close() })
	cfg.S3.Endpoint, cfg.S3.AccessKey, cfg.S3.SecretKey, cfg.S3.Region = s3.URL, s3.AccessKey, s3.SecretKey, "us-east-1"
	cfg.SMTP.Host = "127.0.0.1"
	store, err := blob.New(ctx, cfg.S3)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	d, err := db.Open(ctx, cfg.Database.URL, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	files, err := tenant.LoadDir("../../tenants")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tenant.NewStore(d).Apply(ctx, files); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestImportCommandOutput(t *testing.T) {
	cfg := importEnv(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var zbuf bytes.Buffer
	zw := zip.NewWriter(&zbuf)
	for _, n := range []string{"CLI-1", "CLI-2"} {
		w, _ := zw.Create(n + ".pdf")
		w.Write([]byte("%PDF-1.4 " + n))
	}
	zw.Close()
	payers := write("redevables.csv", "Référence;Nom;Email\nCLI1;Payeur CLI;cli1@demo.fr\nCLI2;Autre;pas-une-adresse\n")
	invoices := write("factures.csv", "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n"+
		"CLI-1;CLI1;Cantine;10/11/2017;21/11/2017;12,50\nCLI-2;CLI1;Garderie;10/11/2017;21/11/2017;3,00\n")
	pdfs := write("pdfs.zip", zbuf.String())
	bad := write("erreurs.csv", "Numéro;Référence redevable;Objet;Date;Echéance;Montant\n"+
		"CLI-3;CLI1;Cantine;10/11/2017;21/11/2017;12,50\nCLI-4;NOBODY;x;10/11/2017;21/11/2017;1\n")
	long := write("longue.csv", "numero;reference\n"+strings.Repeat("x", 70<<10)+"\n")

	run := func(args ...string) (string, string, error) {
		var out, progress bytes.Buffer
		err := runImport(context.Background(), cfg, slog.New(slog.DiscardHandler), args, &out, &progress)
		return out.String(), progress.String(), err
	}
	out, _, err := run("payers", "--tenant", "sistec", payers)
	if err == nil || !strings.Contains(err.Error(), "1 lignes refusées") ||
		!strings.Contains(out, "redevables.csv : 2 lignes") || !strings.Contains(out, "1 créés, 0 mis à jour, 0 inchangés, 1 lignes refusées") ||
		!strings.Contains(out, "  ligne 3 : Adresse mail invalide : « pas-une-adresse ».") {
		t.Fatalf("payers: %v\n%s", err, out)
	}
	out, progress, err := run("invoices", "--tenant", "sistec", invoices, pdfs)
	if err != nil || !strings.Contains(out, "factures.csv : 2 lignes") || !strings.Contains(out, "2 créées, 0 mises à jour, 0 inchangées, 2 PDF, 0 alertes") {
		t.Fatalf("invoices: %v\n%s", err, out)
	}
	if !strings.Contains(progress, "Import des factures") {
		t.Errorf("no progress bar: %q", progress)
	}
	// The same files again: said so, without a rate.
	out, _, err = run("invoices", "--tenant", "sistec", invoices, pdfs)
	if err != nil || !strings.HasSuffix(out, "déjà importé (lot 2), rien n'a changé\n") || strings.Contains(out, "lignes/s") || strings.Count(out, "\n") != 1 {
		t.Fatalf("again: %v\n%s", err, out)
	}
	out, _, err = run("invoices", "--tenant", "sistec", bad)
	if err == nil || !strings.Contains(err.Error(), "fichier refusé") ||
		!strings.Contains(out, "erreurs.csv : fichier refusé, rien n'a été importé") || !strings.Contains(out, "1 lignes en erreur sur 2") ||
		!strings.Contains(out, "  ligne 3 : Redevable inconnu : « NOBODY »\n") {
		t.Fatalf("bad file: %v\n%s", err, out)
	}
	out, _, err = run("invoices", "--tenant", "sistec", long)
	if err == nil || !strings.Contains(out, "  Ligne 2 trop longue : plus de 64 Kio") {
		t.Fatalf("long line: %v\n%s", err, out)
	}
	if _, _, err := run("invoices", "--tenant", "inconnue", invoices); err == nil || !strings.Contains(err.Error(), "inconnue") {
		t.Fatalf("unknown commune: %v", err)
	}
	if _, _, err := run("payers", "--tenant", "sistec", payers, pdfs); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Fatalf("a ZIP with payers: %v", err)
	}
}
