package mail

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"portail/pkg/config"
)

// sendTimeout bounds each step of an SMTP transaction (dial, each command),
// so a stalled relay fails the job instead of holding a worker.
const sendTimeout = 30 * time.Second

// Message is one email, rendered.
type Message struct {
	To      string
	ReplyTo string
	Subject string
	Text    string // text/plain part
	HTML    string // text/html part; with Text, sent as multipart/alternative
	// Headers are extra header fields (e.g. List-Unsubscribe). Address,
	// structural and identity fields are refused: they are set here.
	Headers map[string]string
}

// Sender sends Messages through one SMTP relay.
type Sender struct {
	cfg config.SMTP
}

// NewSender returns a Sender for c; c is checked at each Send.
func NewSender(c config.SMTP) *Sender {
	return &Sender{cfg: c}
}

// reservedHeader tells the fields that Send sets itself.
func reservedHeader(k string) bool {
	switch strings.ToLower(k) {
	case "from", "sender", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id",
		"mime-version", "content-type", "content-transfer-encoding", "return-path":
		return true
	}
	return false
}

// Send delivers m in one SMTP transaction. Each step times out after
// sendTimeout, or sooner when ctx has an earlier deadline.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mail: send: %w", err)
	}
	msg, err := s.build(m)
	if err != nil {
		return err
	}
	client, err := s.client(ctx)
	if err != nil {
		return err
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send via %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return nil
}

func (s *Sender) build(m Message) (*gomail.Msg, error) {
	if m.Text == "" && m.HTML == "" {
		return nil, errors.New("mail: message has no body")
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("mail: subject contains a line break")
	}
	msg := gomail.NewMsg(gomail.WithCharset(gomail.CharsetUTF8), gomail.WithEncoding(gomail.EncodingQP), gomail.WithNoDefaultUserAgent())
	if err := msg.From(s.cfg.From); err != nil {
		return nil, fmt.Errorf("mail: from %q: %w", s.cfg.From, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail: recipient: %w", err)
	}
	if m.ReplyTo != "" {
		if err := msg.ReplyTo(m.ReplyTo); err != nil {
			return nil, fmt.Errorf("mail: reply-to: %w", err)
		}
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	id, err := messageID(s.cfg.From)
	if err != nil {
		return nil, err
	}
	msg.SetMessageIDWithValue(id)
	// Automatic mail: out-of-office replies must not answer it (RFC 3834).
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	for k, v := range m.Headers {
		if !validHeaderName(k) || reservedHeader(k) {
			return nil, fmt.Errorf("mail: header %q cannot be set", k)
		}
		msg.SetGenHeader(gomail.Header(k), v) // values are encoded, line breaks included
	}
	switch {
	case m.Text != "" && m.HTML != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	case m.Text != "":
		msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	default:
		msg.SetBodyString(gomail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

func (s *Sender) client(ctx context.Context) (*gomail.Client, error) {
	c := s.cfg
	if c.Host == "" {
		return nil, errors.New("mail: no SMTP host configured")
	}
	timeout := sendTimeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < timeout {
			timeout = max(left, time.Millisecond)
		}
	}
	opts := []gomail.Option{
		gomail.WithPort(c.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12}),
	}
	switch c.Security {
	case "none":
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case "starttls":
		// Mandatory: never fall back to plain text when STARTTLS is missing.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case "tls":
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		return nil, fmt.Errorf("mail: security must be none, starttls or tls, got %q", c.Security)
	}
	if c.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if c.Security == "none" {
			// go-mail sends PLAIN without TLS only to localhost: a password
			// never crosses the network in clear.
			auth = gomail.SMTPAuthPlain
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(c.Username), gomail.WithPassword(c.Password))
	}
	client, err := gomail.NewClient(c.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail: client: %w", err)
	}
	return client, nil
}

// messageID is unique and names the sender's domain, as filters expect.
func messageID(from string) (string, error) {
	domain := "localhost"
	if a, err := netmail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			domain = d
		}
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mail: message id: %w", err)
	}
	return hex.EncodeToString(b[:]) + "@" + domain, nil
}

// validHeaderName accepts RFC 5322 field names: printable ASCII but colon.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' || c == ':' {
			return false
		}
	}
	return true
}
