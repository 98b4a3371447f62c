package devenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/text/encoding/htmlindex"
)

const (
	mailKept        = 1000     // messages kept, in memory and on disk
	mailMaxBytes    = 25 << 20 // per message, as common relays accept
	mailMaxRcpts    = 100
	mailIDTimeShape = "20060102T150405.000000000Z"
	// Envelope headers prepended to each stored .eml, as a delivering MTA
	// would, so the envelope survives a restart.
	hdrEnvelopeTo = "X-Envelope-To"
)

// validMailID tells whether id has the shape of the IDs we issue (and so of
// the .eml names we own): a time in mailIDTimeShape, a dash, 8 hex digits.
func validMailID(id string) bool {
	t, rnd, ok := strings.Cut(id, "-")
	if !ok || len(rnd) != 8 || strings.Trim(rnd, "0123456789abcdef") != "" || len(t) != len(mailIDTimeShape) {
		return false
	}
	_, err := time.Parse(mailIDTimeShape, t)
	return err == nil
}

// CaughtMessage is one message received by the MailCatcher, decoded.
type CaughtMessage struct {
	ID string `json:"id"`
	// From is the header's sender ("Name <addr>" or addr), or the envelope
	// sender when the header is missing.
	From string `json:"from"`
	// To is the envelope's recipients (RCPT TO), Bcc included.
	To      []string `json:"to"`
	Subject string   `json:"subject"`
	// Date is the header's date, or the time of receipt.
	Date time.Time `json:"date"`
	// Text and HTML are the first text/plain and text/html parts that are
	// not attachments, decoded to UTF-8 with LF line ends.
	Text string `json:"text"`
	HTML string `json:"html"`
	// Headers are the top-level headers, encoded words decoded.
	Headers map[string][]string `json:"headers"`
}

// Header returns the first value of the named header.
func (c CaughtMessage) Header(name string) string {
	if v := c.Headers[textproto.CanonicalMIMEHeaderKey(name)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func (c CaughtMessage) clone() CaughtMessage {
	c.To = slices.Clone(c.To)
	h := make(map[string][]string, len(c.Headers))
	for k, v := range c.Headers {
		h[k] = slices.Clone(v)
	}
	c.Headers = h
	return c
}

// MailCatcher is an SMTP server on loopback that accepts every message
// (any AUTH PLAIN credentials too) and delivers none: it keeps the last
// messages in memory and as .eml files, and shows them on a small web site.
type MailCatcher struct {
	SMTPAddr string // host:port
	WebURL   string // http://host:port

	dir   string
	smtp  *smtp.Server
	web   *http.Server
	pages *template.Template

	mu      sync.Mutex
	msgs    []CaughtMessage // oldest first
	arrived chan struct{}   // closed and replaced at each arrival

	// waiting, when set (by tests), is called each time WaitFor found no
	// match and starts waiting for the next arrival.
	waiting func()
}

// StartMailCatcher listens for SMTP on smtpAddr and HTTP on webAddr (both
// loopback; port 0 picks a free one) and keeps messages under dir.
func StartMailCatcher(dir, smtpAddr, webAddr string) (*MailCatcher, error) {
	for _, a := range []string{smtpAddr, webAddr} {
		if err := checkLoopback(a); err != nil {
			return nil, fmt.Errorf("devenv: mail: %w", err)
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devenv: mail: %w", err)
	}
	m := &MailCatcher{dir: dir, arrived: make(chan struct{}), pages: mailPages()}
	if err := m.load(); err != nil {
		return nil, err
	}

	sln, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		return nil, fmt.Errorf("devenv: mail: %w", err)
	}
	wln, err := net.Listen("tcp", webAddr)
	if err != nil {
		sln.Close()
		return nil, fmt.Errorf("devenv: mail: %w", err)
	}
	m.SMTPAddr = sln.Addr().String()
	m.WebURL = "http://" + wln.Addr().String()

	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) {
		return &catcherSession{m: m}, nil
	}))
	s.Domain = "localhost"
	s.MaxMessageBytes = mailMaxBytes
	s.MaxRecipients = mailMaxRcpts
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.AllowInsecureAuth = true // loopback only, and credentials are not checked
	s.EnableSMTPUTF8 = true
	s.ErrorLog = log.New(os.Stderr, "devenv: smtp: ", log.LstdFlags)
	m.smtp = s

	m.web = &http.Server{
		Handler:           m.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { _ = s.Serve(sln) }()
	go func() { _ = m.web.Serve(wln) }()
	return m, nil
}

// Close stops both servers. Messages stay on disk.
func (m *MailCatcher) Close() error {
	var errs []error
	if err := m.smtp.Close(); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := closeHTTP(m.web); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("devenv: mail: close: %w", err)
	}
	return nil
}

// Messages returns the caught messages, oldest first.
func (m *MailCatcher) Messages() []CaughtMessage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]CaughtMessage, len(m.msgs))
	for i, c := range m.msgs {
		out[i] = c.clone()
	}
	return out
}

// WaitFor returns the newest message, already caught or yet to come, that
// match accepts; it fails when ctx ends first.
func (m *MailCatcher) WaitFor(ctx context.Context, match func(CaughtMessage) bool) (CaughtMessage, error) {
	for {
		// Take the arrival channel with the snapshot, so no message slips
		// between the scan and the wait; match runs unlocked.
		m.mu.Lock()
		ch := m.arrived
		m.mu.Unlock()
		msgs := m.Messages()
		for i := len(msgs) - 1; i >= 0; i-- {
			if match(msgs[i]) {
				return msgs[i], nil
			}
		}
		if m.waiting != nil {
			m.waiting()
		}
		select {
		case <-ctx.Done():
			return CaughtMessage{}, fmt.Errorf("devenv: mail: no matching message: %w", ctx.Err())
		case <-ch:
		}
	}
}

// Clear forgets every message, on disk too.
func (m *MailCatcher) Clear() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = nil
	names, err := m.emlFiles()
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(filepath.Join(m.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("devenv: mail: clear: %w", err)
	}
	return nil
}

// emlFiles lists our .eml files, oldest first.
func (m *MailCatcher) emlFiles() ([]string, error) {
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		return nil, fmt.Errorf("devenv: mail: %w", err)
	}
	var names []string
	for _, e := range entries {
		if n := e.Name(); e.Type().IsRegular() && strings.HasSuffix(n, ".eml") && validMailID(strings.TrimSuffix(n, ".eml")) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names, nil
}

// load reads the messages a previous run left, dropping all but the last.
func (m *MailCatcher) load() error {
	names, err := m.emlFiles()
	if err != nil {
		return err
	}
	if len(names) > mailKept {
		for _, n := range names[:len(names)-mailKept] {
			os.Remove(filepath.Join(m.dir, n))
		}
		names = names[len(names)-mailKept:]
	}
	for _, n := range names {
		raw, err := os.ReadFile(filepath.Join(m.dir, n))
		if err != nil {
			return fmt.Errorf("devenv: mail: %w", err)
		}
		m.msgs = append(m.msgs, parseMessage(strings.TrimSuffix(n, ".eml"), raw))
	}
	return nil
}

// deliver stores one message received over SMTP.
func (m *MailCatcher) deliver(from string, to []string, data []byte) error {
	var rnd [4]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return err
	}
	id := time.Now().UTC().Format(mailIDTimeShape) + "-" + hex.EncodeToString(rnd[:])

	var raw bytes.Buffer
	fmt.Fprintf(&raw, "Return-Path: <%s>\r\n%s: %s\r\n", from, hdrEnvelopeTo, strings.Join(to, ", "))
	raw.Write(data)

	// Write then rename, so a crash never leaves half a message to load.
	tmp, err := os.CreateTemp(m.dir, ".incoming-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(raw.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(m.dir, id+".eml")); err != nil {
		os.Remove(tmp.Name())
		return err
	}

	c := parseMessage(id, raw.Bytes())
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, c)
	if extra := len(m.msgs) - mailKept; extra > 0 {
		for _, old := range m.msgs[:extra] {
			os.Remove(filepath.Join(m.dir, old.ID+".eml"))
		}
		m.msgs = slices.Delete(m.msgs, 0, extra)
	}
	close(m.arrived)
	m.arrived = make(chan struct{})
	return nil
}

func (m *MailCatcher) find(id string) (CaughtMessage, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.msgs {
		if c.ID == id {
			return c.clone(), true
		}
	}
	return CaughtMessage{}, false
}

// catcherSession accepts everything from anyone.
type catcherSession struct {
	m    *MailCatcher
	from string
	to   []string
}

func (s *catcherSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *catcherSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(string, string, string) error { return nil }), nil
}

func (s *catcherSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from, s.to = from, nil
	return nil
}

func (s *catcherSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *catcherSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := s.m.deliver(s.from, s.to, data); err != nil {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot store message: " + err.Error()}
	}
	return nil
}

func (s *catcherSession) Reset() { s.from, s.to = "", nil }

func (s *catcherSession) Logout() error { return nil }

// parseMessage decodes what a mail client would show. It never fails: an
// unreadable message is shown raw as its text.
func parseMessage(id string, raw []byte) CaughtMessage {
	received, _ := time.Parse(mailIDTimeShape, strings.SplitN(id, "-", 2)[0])
	c := CaughtMessage{ID: id, Date: received, To: []string{}, Headers: map[string][]string{}}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		c.Text = normalizeNewlines(string(raw))
		return c
	}
	dec := &mime.WordDecoder{CharsetReader: charsetReader}
	for k, vs := range msg.Header {
		for _, v := range vs {
			if d, err := dec.DecodeHeader(v); err == nil {
				v = d
			}
			c.Headers[k] = append(c.Headers[k], v)
		}
	}
	c.Subject = c.Header("Subject")
	if d, err := mail.ParseDate(msg.Header.Get("Date")); err == nil {
		c.Date = d
	}
	ap := &mail.AddressParser{WordDecoder: dec}
	if a, err := ap.Parse(msg.Header.Get("From")); err == nil {
		c.From = formatAddress(a)
	} else if f := c.Header("From"); f != "" {
		c.From = f
	} else {
		c.From = strings.Trim(msg.Header.Get("Return-Path"), "<>")
	}
	if env := msg.Header.Get(hdrEnvelopeTo); env != "" {
		for _, a := range strings.Split(env, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.To = append(c.To, a)
			}
		}
	} else {
		for _, h := range []string{"To", "Cc"} {
			if list, err := ap.ParseList(msg.Header.Get(h)); err == nil {
				for _, a := range list {
					c.To = append(c.To, a.Address)
				}
			}
		}
	}
	if err := walkPart(&c, textproto.MIMEHeader(msg.Header), msg.Body, 0); err != nil && c.Text == "" && c.HTML == "" {
		c.Text = normalizeNewlines(string(raw))
	}
	return c
}

func formatAddress(a *mail.Address) string {
	if a.Name == "" {
		return a.Address
	}
	return a.Name + " <" + a.Address + ">"
}

// walkPart fills c.Text and c.HTML from the first inline text parts.
func walkPart(c *CaughtMessage, h textproto.MIMEHeader, body io.Reader, depth int) error {
	if depth > 10 {
		return errors.New("MIME nesting too deep")
	}
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain; charset=us-ascii"
	}
	mediaType, params, err := mime.ParseMediaType(ct)
	if err != nil {
		mediaType, params = "text/plain", map[string]string{}
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// Raw parts: we decode the transfer encoding ourselves, the same
			// way for every encoding.
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walkPart(c, p.Header, p, depth+1); err != nil {
				return err
			}
		}
	}
	if disp, _, _ := mime.ParseMediaType(h.Get("Content-Disposition")); disp == "attachment" {
		return nil
	}
	if mediaType != "text/plain" && mediaType != "text/html" {
		return nil
	}
	if (mediaType == "text/plain" && c.Text != "") || (mediaType == "text/html" && c.HTML != "") {
		return nil
	}
	var r io.Reader = body
	switch strings.ToLower(strings.TrimSpace(h.Get("Content-Transfer-Encoding"))) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r) // ignores line breaks
	}
	if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if cr, err := charsetReader(cs, r); err == nil {
			r = cr
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if mediaType == "text/plain" {
		c.Text = normalizeNewlines(string(b))
	} else {
		c.HTML = normalizeNewlines(string(b))
	}
	return nil
}

func charsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("unknown charset %q", charset)
	}
	return enc.NewDecoder().Reader(r), nil
}

func normalizeNewlines(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// --- web ---

func (m *MailCatcher) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", m.handleIndex)
	mux.HandleFunc("GET /messages/{id}", m.handleMessage)
	mux.HandleFunc("GET /messages/{id}/raw", m.handleRaw)
	mux.HandleFunc("GET /api/messages", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, m.Messages())
	})
	mux.HandleFunc("GET /api/messages/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, ok := m.find(r.PathValue("id"))
		if !ok {
			http.Error(w, "message inconnu", http.StatusNotFound)
			return
		}
		writeJSON(w, c)
	})
	mux.HandleFunc("DELETE /api/messages", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Clear(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The HTML part is shown in a sandboxed srcdoc frame, which inherits
		// this policy: no scripts, no remote images or fonts, no tracking.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-src 'self'; frame-ancestors 'self'; form-action 'none'")
		mux.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // readable addresses and HTML parts
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (m *MailCatcher) handleIndex(w http.ResponseWriter, r *http.Request) {
	msgs := m.Messages()
	slices.Reverse(msgs) // newest first on the page
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := m.pages.ExecuteTemplate(w, "index", msgs); err != nil {
		log.Printf("devenv: mail: index page: %v", err)
	}
}

func (m *MailCatcher) handleMessage(w http.ResponseWriter, r *http.Request) {
	c, ok := m.find(r.PathValue("id"))
	if !ok {
		http.Error(w, "Message inconnu.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := m.pages.ExecuteTemplate(w, "message", c); err != nil {
		log.Printf("devenv: mail: message page: %v", err)
	}
}

func (m *MailCatcher) handleRaw(w http.ResponseWriter, r *http.Request) {
	c, ok := m.find(r.PathValue("id"))
	if !ok || !validMailID(c.ID) {
		http.Error(w, "Message inconnu.", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeFile(w, r, filepath.Join(m.dir, c.ID+".eml"))
}

// textSegment is a piece of a text part: plain text or a link to show.
type textSegment struct {
	Text string
	URL  bool
}

// linkify splits s so the page can make its URLs clickable (activation and
// reset links are what one looks for in the catcher).
func linkify(s string) []textSegment {
	linkRe := regexp.MustCompile(`https?://[^\s<>"]+`)
	var out []textSegment
	last := 0
	for _, loc := range linkRe.FindAllStringIndex(s, -1) {
		end := loc[1]
		for end > loc[0] && strings.ContainsRune(".,;:!?)]'", rune(s[end-1])) {
			end--
		}
		if loc[0] > last {
			out = append(out, textSegment{Text: s[last:loc[0]]})
		}
		out = append(out, textSegment{Text: s[loc[0]:end], URL: true})
		last = end
	}
	if last < len(s) {
		out = append(out, textSegment{Text: s[last:]})
	}
	return out
}

// htmlFrame prepares an HTML part for a sandboxed frame: links open in a new
// tab, outside the sandbox.
func htmlFrame(s string) string { return `<base target="_blank">` + s }

func mailPages() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"date": func(t time.Time) string {
			return t.Local().Format("02/01/2006 à 15:04:05")
		},
		"iso":       func(t time.Time) string { return t.Format(time.RFC3339) },
		"join":      strings.Join,
		"linkify":   linkify,
		"htmlFrame": htmlFrame,
	}).Parse(`
{{define "head"}}<!doctype html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.}} — Courriels de développement</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; line-height: 1.5; color: #1a1a1a; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ccc; vertical-align: top; }
caption { text-align: left; font-weight: bold; padding-bottom: .5rem; }
a { color: #0b4ea2; }
a:focus { outline: 3px solid #f90; }
pre { white-space: pre-wrap; word-break: break-word; background: #f5f5f5; padding: 1rem; }
iframe { width: 100%; height: 32rem; border: 1px solid #999; background: #fff; }
dt { font-weight: bold; }
dd { margin: 0 0 .5rem 0; }
</style>
</head>
<body>
{{end}}

{{define "index"}}{{template "head" "Messages reçus"}}
<header><h1>Messages reçus</h1></header>
<main>
<p>Le serveur SMTP de développement garde les 1 000 derniers messages reçus ; aucun n'est réellement envoyé. Messages présents : {{len .}}.</p>
{{if .}}
<table>
<caption>Messages, du plus récent au plus ancien</caption>
<thead><tr><th scope="col">Date</th><th scope="col">Expéditeur</th><th scope="col">Destinataires</th><th scope="col">Objet</th></tr></thead>
<tbody>
{{range .}}<tr>
<td><time datetime="{{iso .Date}}">{{date .Date}}</time></td>
<td>{{.From}}</td>
<td>{{join .To ", "}}</td>
<td><a href="/messages/{{.ID}}">{{if .Subject}}{{.Subject}}{{else}}(sans objet){{end}}</a></td>
</tr>
{{end}}</tbody>
</table>
{{else}}
<p>Aucun message pour l'instant.</p>
{{end}}
</main>
</body>
</html>
{{end}}

{{define "message"}}{{template "head" (or .Subject "(sans objet)")}}
<header>
<nav><a href="/">Retour à la liste des messages</a></nav>
<h1>{{if .Subject}}{{.Subject}}{{else}}(sans objet){{end}}</h1>
</header>
<main>
<dl>
<dt>De</dt><dd>{{.From}}</dd>
<dt>À</dt><dd>{{join .To ", "}}</dd>
<dt>Date</dt><dd><time datetime="{{iso .Date}}">{{date .Date}}</time></dd>
{{with .Header "Reply-To"}}<dt>Répondre à</dt><dd>{{.}}</dd>{{end}}
</dl>
<p><a href="/messages/{{.ID}}/raw">Voir la source du message (.eml)</a></p>
<section aria-labelledby="texte">
<h2 id="texte">Version texte</h2>
{{if .Text}}<pre>{{range linkify .Text}}{{if .URL}}<a href="{{.Text}}" target="_blank" rel="noopener noreferrer">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}</pre>
{{else}}<p>Ce message n'a pas de version texte.</p>{{end}}
</section>
<section aria-labelledby="html">
<h2 id="html">Version HTML</h2>
{{if .HTML}}<iframe title="Version HTML du message" sandbox="allow-popups allow-popups-to-escape-sandbox" srcdoc="{{htmlFrame .HTML}}"></iframe>
<details><summary>Code HTML</summary><pre>{{.HTML}}</pre></details>
{{else}}<p>Ce message n'a pas de version HTML.</p>{{end}}
</section>
</main>
</body>
</html>
{{end}}
`))
}
