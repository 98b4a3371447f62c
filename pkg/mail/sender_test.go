package mail_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"portail/pkg/config"
	"portail/pkg/devenv"
	"portail/pkg/mail"
)

func startCatcher(t *testing.T) (*devenv.MailCatcher, config.SMTP) {
	t.Helper()
	mc, err := devenv.StartMailCatcher(t.TempDir(), "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mc.Close() })
	host, port, _ := net.SplitHostPort(mc.SMTPAddr)
	p, _ := strconv.Atoi(port)
	return mc, config.SMTP{
		Host: host, Port: p, Security: "none",
		From: "Mairie de Saint-Étienne-de-Tinée <no-reply@portail.test>",
	}
}

func waitSubject(t *testing.T, mc *devenv.MailCatcher, subject string) devenv.CaughtMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := mc.WaitFor(ctx, func(c devenv.CaughtMessage) bool { return c.Subject == subject })
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSendAccentsSurvive(t *testing.T) {
	mc, cfg := startCatcher(t)
	subject := "Votre facture d'été n° 2017-020-002059 — échéance à régler : 243,11 €"
	text := "Bonjour Hélène Lefèvre,\n\n" +
		"Votre facture « Restauration scolaire » d'un montant de 243,11 € est à régler avant le 21/07/2017. " +
		"Cette ligne est volontairement très longue pour forcer des coupures douces en quoted-printable, çà et là, où qu'elles tombent.\n" +
		"Activez votre compte : https://sistec.localhost:8080/activation?jeton=a1b2=c3\n" +
		"L'équipe de la régie. Ça marche ! Œuvre, ÿ, ß, 日本.\n"
	html := "<!doctype html><html lang=\"fr\"><body><p>Bonjour <strong>Hélène</strong>,</p>" +
		"<p>Montant : 243,11&nbsp;€ — à régler avant le 21/07/2017.</p></body></html>"
	err := mail.NewSender(cfg).Send(context.Background(), mail.Message{
		To:      "helene.lefevre@example.fr",
		ReplyTo: "regie@saint-etienne.example.fr",
		Subject: subject,
		Text:    text,
		HTML:    html,
		Headers: map[string]string{"List-Unsubscribe": "<mailto:desinscription@portail.test>", "X-Portail-Tenant": "sistec"},
	})
	if err != nil {
		t.Fatal(err)
	}
	c := waitSubject(t, mc, subject)
	if c.From != "Mairie de Saint-Étienne-de-Tinée <no-reply@portail.test>" {
		t.Errorf("From = %q", c.From)
	}
	if len(c.To) != 1 || c.To[0] != "helene.lefevre@example.fr" {
		t.Errorf("To = %q", c.To)
	}
	if strings.TrimRight(c.Text, "\n") != strings.TrimRight(text, "\n") {
		t.Errorf("Text =\n%q\nwant\n%q", c.Text, text)
	}
	if strings.TrimRight(c.HTML, "\n") != html {
		t.Errorf("HTML =\n%q\nwant\n%q", c.HTML, html)
	}
	if !strings.HasPrefix(c.Header("Content-Type"), "multipart/alternative") {
		t.Errorf("Content-Type = %q", c.Header("Content-Type"))
	}
	for h, want := range map[string]string{
		"Reply-To":         "<regie@saint-etienne.example.fr>",
		"List-Unsubscribe": "<mailto:desinscription@portail.test>",
		"X-Portail-Tenant": "sistec",
		"Auto-Submitted":   "auto-generated",
	} {
		if got := c.Header(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if !strings.HasSuffix(c.Header("Message-Id"), "@portail.test>") {
		t.Errorf("Message-ID = %q", c.Header("Message-Id"))
	}
	if time.Since(c.Date) > time.Minute || time.Until(c.Date) > time.Minute {
		t.Errorf("Date = %v", c.Date)
	}
}

func TestSendTextOnlyAndHTMLOnly(t *testing.T) {
	mc, cfg := startCatcher(t)
	s := mail.NewSender(cfg)
	if err := s.Send(context.Background(), mail.Message{To: "a@example.fr", Subject: "texte seul é", Text: "déjà"}); err != nil {
		t.Fatal(err)
	}
	if c := waitSubject(t, mc, "texte seul é"); strings.TrimSpace(c.Text) != "déjà" || c.HTML != "" {
		t.Errorf("text only: %q / %q", c.Text, c.HTML)
	}
	if err := s.Send(context.Background(), mail.Message{To: "a@example.fr", Subject: "html seul é", HTML: "<p>déjà</p>"}); err != nil {
		t.Fatal(err)
	}
	if c := waitSubject(t, mc, "html seul é"); strings.TrimSpace(c.HTML) != "<p>déjà</p>" || c.Text != "" {
		t.Errorf("html only: %q / %q", c.Text, c.HTML)
	}
}

func TestSendWithAuth(t *testing.T) {
	mc, cfg := startCatcher(t)
	cfg.Username, cfg.Password = "portail", "s3cret"
	if err := mail.NewSender(cfg).Send(context.Background(), mail.Message{To: "b@example.fr", Subject: "avec authentification", Text: "ok"}); err != nil {
		t.Fatal(err)
	}
	waitSubject(t, mc, "avec authentification")
}

func TestRefusesPlainTextWhenTLSConfigured(t *testing.T) {
	mc, cfg := startCatcher(t)
	for _, sec := range []string{"starttls", "tls"} {
		cfg.Security = sec
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := mail.NewSender(cfg).Send(ctx, mail.Message{To: "c@example.fr", Subject: sec, Text: "ne doit pas partir"})
		cancel()
		if err == nil {
			t.Errorf("%s against a plain-text server: sent", sec)
		}
	}
	if n := len(mc.Messages()); n != 0 {
		t.Fatalf("%d messages went through in clear", n)
	}
}

func TestUnreachableServer(t *testing.T) {
	// A closed port: refused at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	p, _ := strconv.Atoi(port)
	cfg := config.SMTP{Host: "127.0.0.1", Port: p, Security: "none", From: "no-reply@portail.test"}
	start := time.Now()
	if err := mail.NewSender(cfg).Send(context.Background(), mail.Message{To: "d@example.fr", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("sent to a closed port")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}

	// A server that accepts the connection and never answers: the
	// context's deadline ends the attempt.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	_, port, _ = net.SplitHostPort(silent.Addr().String())
	cfg.Port, _ = strconv.Atoi(port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start = time.Now()
	if err := mail.NewSender(cfg).Send(ctx, mail.Message{To: "d@example.fr", Subject: "x", Text: "x"}); err == nil {
		t.Fatal("sent to a silent server")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("silent server: took %v", d)
	}
}

func TestRejectsBadMessages(t *testing.T) {
	_, cfg := startCatcher(t)
	s := mail.NewSender(cfg)
	for name, m := range map[string]mail.Message{
		"no body":         {To: "e@example.fr", Subject: "x"},
		"bad recipient":   {To: "pas une adresse", Subject: "x", Text: "x"},
		"reserved header": {To: "e@example.fr", Subject: "x", Text: "x", Headers: map[string]string{"Bcc": "spy@example.com"}},
		"bad header name": {To: "e@example.fr", Subject: "x", Text: "x", Headers: map[string]string{"X-A: b\r\nBcc": "spy@example.com"}},
		"subject CRLF":    {To: "e@example.fr", Subject: "x\r\nBcc: spy@example.com", Text: "x"},
	} {
		if err := s.Send(context.Background(), m); err == nil {
			t.Errorf("%s: sent", name)
		}
	}
	bad := cfg
	bad.Security = "ssl"
	if err := mail.NewSender(bad).Send(context.Background(), mail.Message{To: "e@example.fr", Subject: "x", Text: "x"}); err == nil {
		t.Error("unknown security accepted")
	}
}
