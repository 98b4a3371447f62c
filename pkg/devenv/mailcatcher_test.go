package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Hand-made messages, as various mail programs write them.
const (
	msgQPAlternative = "From: =?UTF-8?q?R=C3=A9gie_de_la_Mairie?= <regie@mairie.test>\r\n" +
		"To: Hélène <helene@example.fr>\r\n" +
		"Subject: =?UTF-8?q?Facture_d=27=C3=A9t=C3=A9_=E2=80=94_243,11_=E2=82=AC?=\r\n" +
		"Date: Mon, 10 Jul 2017 09:30:00 +0200\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/alternative; boundary=\"b1\"\r\n" +
		"\r\n" +
		"--b1\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Bonjour H=C3=A9l=C3=A8ne,\r\n" +
		"une ligne coup=C3=A9e en=\r\n" +
		" deux. https://sistec.localhost:8080/activation?jeton=3Dabc\r\n" +
		"--b1\r\n" +
		"Content-Type: text/html; charset=UTF-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"<p>Bonjour <b>H=C3=A9l=C3=A8ne</b></p><script>alert(1)</script>\r\n" +
		"--b1--\r\n"

	msgBase64Latin1 = "From: tresorerie@dgfip.test\r\n" +
		"To: a@example.fr\r\n" +
		"Subject: =?ISO-8859-1?B?UulnbOk=?= =?UTF-8?q?_=C3=A0_temps?=\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=outer\r\n" +
		"\r\n" +
		"--outer\r\n" +
		"Content-Type: multipart/alternative; boundary=inner\r\n" +
		"\r\n" +
		"--inner\r\n" +
		"Content-Type: text/plain; charset=ISO-8859-1\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"ROlq4CBwYXnpIGVu\r\nIG9jdG9icmUuDQo=\r\n" +
		"--inner\r\n" +
		"Content-Type: text/html; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"PHA+TW9udGFudCByw6lnbMOpIDogMTIsNTAg4oKsPC9wPg==\r\n" +
		"--inner--\r\n" +
		"--outer\r\n" +
		"Content-Type: text/plain; charset=UTF-8\r\n" +
		"Content-Disposition: attachment; filename=\"notes.txt\"\r\n" +
		"\r\n" +
		"pièce jointe, pas le corps\r\n" +
		"--outer--\r\n"

	msgPlain = "From: simple@example.fr\r\n" +
		"To: b@example.fr\r\n" +
		"Subject: sans MIME\r\n" +
		"\r\n" +
		"Texte brut.\r\n"
)

func startCatcherT(t *testing.T, dir string) *MailCatcher {
	t.Helper()
	mc, err := StartMailCatcher(dir, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

func sendRaw(t *testing.T, mc *MailCatcher, from string, to []string, raw string) {
	t.Helper()
	if err := smtp.SendMail(mc.SMTPAddr, nil, from, to, []byte(raw)); err != nil {
		t.Fatal(err)
	}
}

func waitSubject(t *testing.T, mc *MailCatcher, subject string) CaughtMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mc.WaitFor(ctx, func(c CaughtMessage) bool { return c.Subject == subject })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func httpGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func TestMailCatcherDecodes(t *testing.T) {
	mc := startCatcherT(t, t.TempDir())
	defer mc.Close()
	sendRaw(t, mc, "regie@mairie.test", []string{"helene@example.fr", "cache@example.fr"}, msgQPAlternative)
	sendRaw(t, mc, "tresorerie@dgfip.test", []string{"a@example.fr"}, msgBase64Latin1)
	sendRaw(t, mc, "simple@example.fr", []string{"b@example.fr"}, msgPlain)

	c := waitSubject(t, mc, "Facture d'été — 243,11 €")
	if c.From != "Régie de la Mairie <regie@mairie.test>" {
		t.Errorf("From = %q", c.From)
	}
	if strings.Join(c.To, ",") != "helene@example.fr,cache@example.fr" {
		t.Errorf("To = %q (want the envelope, Bcc included)", c.To)
	}
	wantText := "Bonjour Hélène,\nune ligne coupée en deux. https://sistec.localhost:8080/activation?jeton=abc"
	if c.Text != wantText {
		t.Errorf("Text = %q, want %q", c.Text, wantText)
	}
	if !strings.HasPrefix(c.HTML, "<p>Bonjour <b>Hélène</b></p>") {
		t.Errorf("HTML = %q", c.HTML)
	}
	if want := time.Date(2017, 7, 10, 7, 30, 0, 0, time.UTC); !c.Date.Equal(want) {
		t.Errorf("Date = %v, want %v", c.Date, want)
	}

	c = waitSubject(t, mc, "Réglé à temps")
	if c.Text != "Déjà payé en octobre.\n" {
		t.Errorf("latin-1 base64 text = %q", c.Text)
	}
	if c.HTML != "<p>Montant réglé : 12,50 €</p>" {
		t.Errorf("base64 html = %q", c.HTML)
	}

	c = waitSubject(t, mc, "sans MIME")
	if c.Text != "Texte brut.\n" || c.HTML != "" || c.From != "simple@example.fr" {
		t.Errorf("plain: %+v", c)
	}
	if time.Since(c.Date) > time.Minute {
		t.Errorf("no Date header: got %v, want the time of receipt", c.Date)
	}

	// JSON listing: same data as Messages(), in arrival order.
	status, body, hdr := httpGet(t, mc.WebURL+"/api/messages")
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		t.Fatalf("api: %d %s", status, hdr.Get("Content-Type"))
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0]["subject"] != "Facture d'été — 243,11 €" || list[2]["subject"] != "sans MIME" {
		t.Fatalf("api listing: %s", body)
	}
	for _, k := range []string{"id", "from", "to", "subject", "date", "text", "html"} {
		if _, ok := list[1][k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	if to, ok := list[0]["to"].([]any); !ok || len(to) != 2 {
		t.Errorf("JSON to = %v", list[0]["to"])
	}
}

func TestMailCatcherWeb(t *testing.T) {
	mc := startCatcherT(t, t.TempDir())
	defer mc.Close()

	status, body, _ := httpGet(t, mc.WebURL+"/")
	if status != 200 || !strings.Contains(body, "Aucun message") {
		t.Fatalf("empty index: %d %s", status, body)
	}
	sendRaw(t, mc, "regie@mairie.test", []string{"helene@example.fr"}, msgQPAlternative)
	c := waitSubject(t, mc, "Facture d'été — 243,11 €")

	status, body, hdr := httpGet(t, mc.WebURL+"/")
	if status != 200 || !strings.Contains(body, `<html lang="fr">`) ||
		!strings.Contains(body, `href="/messages/`+c.ID+`"`) ||
		!strings.Contains(body, "Facture d&#39;été — 243,11 €") ||
		!strings.Contains(body, `<th scope="col">Objet</th>`) {
		t.Fatalf("index: %d %s", status, body)
	}
	if !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("CSP = %q", hdr.Get("Content-Security-Policy"))
	}

	status, body, _ = httpGet(t, mc.WebURL+"/messages/"+c.ID)
	if status != 200 || !strings.Contains(body, "Version texte") || !strings.Contains(body, "Bonjour Hélène,") ||
		!strings.Contains(body, `<a href="https://sistec.localhost:8080/activation?jeton=abc"`) {
		t.Fatalf("message page: %d %s", status, body)
	}
	// The HTML part is only ever shown escaped or inside the sandboxed frame.
	if strings.Contains(body, "<script>") || !strings.Contains(body, `sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="`) {
		t.Fatalf("HTML part not contained: %s", body)
	}

	status, body, _ = httpGet(t, mc.WebURL+"/messages/"+c.ID+"/raw")
	if status != 200 || !strings.Contains(body, "Content-Transfer-Encoding: quoted-printable") {
		t.Fatalf("raw: %d %s", status, body)
	}
	status, _, _ = httpGet(t, mc.WebURL+"/api/messages/"+c.ID)
	if status != 200 {
		t.Fatalf("api one: %d", status)
	}
	for _, p := range []string{"/messages/nope", "/messages/..%2f..%2fetc%2fpasswd/raw", "/api/messages/nope"} {
		if status, _, _ := httpGet(t, mc.WebURL+p); status != 404 {
			t.Errorf("%s: status %d", p, status)
		}
	}

	req, _ := http.NewRequest(http.MethodDelete, mc.WebURL+"/api/messages", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if _, body, _ := httpGet(t, mc.WebURL+"/api/messages"); strings.TrimSpace(body) != "[]" {
		t.Fatalf("after delete: %s", body)
	}
}

func TestMailCatcherSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	mc := startCatcherT(t, dir)
	sendRaw(t, mc, "regie@mairie.test", []string{"helene@example.fr"}, msgQPAlternative)
	before := waitSubject(t, mc, "Facture d'été — 243,11 €")
	if err := mc.Close(); err != nil {
		t.Fatal(err)
	}

	mc = startCatcherT(t, dir)
	defer mc.Close()
	msgs := mc.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages after restart", len(msgs))
	}
	after := msgs[0]
	if after.ID != before.ID || after.Subject != before.Subject || after.Text != before.Text ||
		strings.Join(after.To, ",") != "helene@example.fr" || !after.Date.Equal(before.Date) {
		t.Fatalf("after restart: %+v\nbefore: %+v", after, before)
	}
	// A cleared catcher stays cleared after a restart.
	if err := mc.Clear(); err != nil {
		t.Fatal(err)
	}
	mc.Close()
	mc = startCatcherT(t, dir)
	defer mc.Close()
	if n := len(mc.Messages()); n != 0 {
		t.Fatalf("%d messages after clear and restart", n)
	}
}

func TestMailCatcherWaitFor(t *testing.T) {
	mc := startCatcherT(t, t.TempDir())
	defer mc.Close()
	// WaitFor says when it has scanned the messages and waits: only then is
	// the message sent, so it must be seen as an arrival, not in the scan.
	waiting := make(chan struct{}, 1)
	mc.waiting = func() {
		select {
		case waiting <- struct{}{}:
		default:
		}
	}
	got := make(chan CaughtMessage, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := mc.WaitFor(ctx, func(c CaughtMessage) bool { return c.Subject == "sans MIME" })
		if err == nil {
			got <- c
		}
		close(got)
	}()
	select {
	case <-waiting:
	case <-time.After(10 * time.Second):
		t.Fatal("WaitFor never started waiting")
	}
	sendRaw(t, mc, "simple@example.fr", []string{"b@example.fr"}, msgPlain)
	if c, ok := <-got; !ok || c.Subject != "sans MIME" {
		t.Fatal("WaitFor did not see the message")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := mc.WaitFor(ctx, func(c CaughtMessage) bool { return false })
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want deadline exceeded", err)
	}
}

func TestMailCatcherIsBounded(t *testing.T) {
	dir := t.TempDir()
	mc := startCatcherT(t, dir)
	defer mc.Close()
	for i := range mailKept + 5 {
		raw := fmt.Sprintf("From: a@example.fr\r\nSubject: n%d\r\n\r\nx\r\n", i)
		if err := mc.deliver("a@example.fr", []string{"b@example.fr"}, []byte(raw)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := mc.Messages()
	if len(msgs) != mailKept || msgs[0].Subject != "n5" || msgs[len(msgs)-1].Subject != fmt.Sprintf("n%d", mailKept+4) {
		t.Fatalf("kept %d, first %q", len(msgs), msgs[0].Subject)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.eml"))
	if len(files) != mailKept {
		t.Fatalf("%d files on disk", len(files))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != mailKept {
		t.Fatalf("%d entries in dir (temporary files left?)", len(entries))
	}
}

func TestMailCatcherRefusesNonLoopback(t *testing.T) {
	if mc, err := StartMailCatcher(t.TempDir(), "0.0.0.0:0", "127.0.0.1:0"); err == nil {
		mc.Close()
		t.Fatal("SMTP on all interfaces accepted")
	}
	if mc, err := StartMailCatcher(t.TempDir(), "127.0.0.1:0", ":0"); err == nil {
		mc.Close()
		t.Fatal("web on all interfaces accepted")
	}
}
