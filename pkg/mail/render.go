package mail

import (
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"strings"
	texttemplate "text/template"

	"portail/pkg/tenant"
)

// Renderer turns an Email into a Message from templates/email/<name>.tmpl,
// which defines "subject", "text" and "html" (the latter inside "layout"
// from templates/email/layout.tmpl, carrying the commune's branding).
type Renderer struct {
	fsys fs.FS
}

// NewRenderer reads templates from fsys (the templates package's FS).
func NewRenderer(fsys fs.FS) *Renderer { return &Renderer{fsys: fsys} }

// emailData is what email templates receive.
type emailData struct {
	Tenant *tenant.Tenant
	Data   map[string]any
}

// Render builds the message for e as sent by commune t.
func (r *Renderer) Render(t *tenant.Tenant, e Email) (Message, error) {
	src, err := fs.ReadFile(r.fsys, "email/"+e.Template+".tmpl")
	if err != nil {
		return Message{}, fmt.Errorf("mail: template %q: %w", e.Template, err)
	}
	layout, err := fs.ReadFile(r.fsys, "email/layout.tmpl")
	if err != nil {
		return Message{}, fmt.Errorf("mail: layout: %w", err)
	}
	d := emailData{Tenant: t, Data: e.Data}

	// Subject and text part: text/template, no HTML escaping.
	tt, err := texttemplate.New("t").Option("missingkey=error").Parse(string(src))
	if err != nil {
		return Message{}, fmt.Errorf("mail: %s: %w", e.Template, err)
	}
	var subject, text strings.Builder
	if err := tt.ExecuteTemplate(&subject, "subject", d); err != nil {
		return Message{}, fmt.Errorf("mail: %s subject: %w", e.Template, err)
	}
	if err := tt.ExecuteTemplate(&text, "text", d); err != nil {
		return Message{}, fmt.Errorf("mail: %s text: %w", e.Template, err)
	}
	// HTML part: html/template escapes the data.
	ht, err := htmltemplate.New("h").Option("missingkey=error").Parse(string(layout))
	if err == nil {
		_, err = ht.Parse(string(src))
	}
	if err != nil {
		return Message{}, fmt.Errorf("mail: %s: %w", e.Template, err)
	}
	var html strings.Builder
	if err := ht.ExecuteTemplate(&html, "layout", d); err != nil {
		return Message{}, fmt.Errorf("mail: %s html: %w", e.Template, err)
	}
	return Message{
		To:      e.To,
		ReplyTo: e.ReplyTo,
		Subject: strings.TrimSpace(subject.String()),
		Text:    strings.TrimSpace(text.String()) + "\n",
		HTML:    html.String(),
	}, nil
}
