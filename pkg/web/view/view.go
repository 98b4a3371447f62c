// Package view renders html/template pages inside the shared layout, with a
// commune's branding and its optional template overrides.
package view

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // Europe/Paris even where the system has no zone files

	"portail/pkg/tenant"
)

// Page is what every template receives.
type Page struct {
	Tenant    *tenant.Tenant
	Viewer    *Viewer // the logged-in resident, nil on public pages
	Title     string
	Section   string // menu entry to mark as current
	CSRFToken string
	Flashes   []Flash
	Data      any
}

// Viewer is the logged-in resident as the layout shows them.
type Viewer struct {
	DisplayName string
}

// Flash is a one-line message shown above the content. The first one of a
// page receives the focus when the page opens, so that a screen reader
// reads the outcome of the resident's action first.
type Flash struct {
	Kind string // ok | error | info
	Text string
	// Fields are the ids of the form fields an error is about: they are
	// marked invalid and described by it (aria-describedby).
	Fields []string
	ID     string // set when rendered: "message", "message-2"…
}

// HasError tells whether the page reports an error (its title says so).
func (p Page) HasError() bool {
	for _, f := range p.Flashes {
		if f.Kind == "error" {
			return true
		}
	}
	return false
}

// ErrorFor is the id of the error message about form field id, "" when
// none: templates set aria-invalid and aria-describedby with it.
func (p Page) ErrorFor(id string) string {
	for _, f := range p.Flashes {
		if f.Kind == "error" && slices.Contains(f.Fields, id) {
			return f.ID
		}
	}
	return ""
}

// withMessageIDs gives every flash its element id.
func (p Page) withMessageIDs() Page {
	p.Flashes = slices.Clone(p.Flashes)
	for i := range p.Flashes {
		p.Flashes[i].ID = "message"
		if i > 0 {
			p.Flashes[i].ID = fmt.Sprintf("message-%d", i+1)
		}
	}
	return p
}

// Renderer parses pages lazily and caches them per tenant version.
type Renderer struct {
	fsys  fs.FS
	funcs template.FuncMap

	mu    sync.Mutex
	cache map[string]*template.Template
}

// New returns a renderer over the templates file system.
func New(fsys fs.FS, funcs template.FuncMap) *Renderer {
	// Dates are shown as residents live them, in Paris, whatever the
	// server's own zone (UTC in a container): a payment made at 00:30 in
	// Paris is dated that day. DATE columns arrive as UTC midnight, which is
	// the same day in Paris.
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic("view: Europe/Paris: " + err.Error()) // cannot happen: time/tzdata is embedded
	}
	base := template.FuncMap{
		"date": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				return v.In(paris).Format("02/01/2006")
			case *time.Time:
				if v != nil {
					return v.In(paris).Format("02/01/2006")
				}
			}
			return ""
		},
		"lines": func(s string) []string {
			return strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
		},
	}
	for k, v := range funcs {
		base[k] = v
	}
	return &Renderer{fsys: fsys, funcs: base, cache: map[string]*template.Template{}}
}

// Render writes page (e.g. "resident/login.html") inside the layout.
func (r *Renderer) Render(w http.ResponseWriter, status int, page string, p Page) error {
	tmpl, err := r.lookup(page, p.Tenant)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.ExecuteTemplate(&buf, "base", p.withMessageIDs()); err != nil {
		return fmt.Errorf("view: %s: %w", page, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, err = w.Write(buf.Bytes())
	return err
}

func (r *Renderer) lookup(page string, t *tenant.Tenant) (*template.Template, error) {
	key := page
	if t != nil && len(t.TemplateOverrides) > 0 {
		key = fmt.Sprintf("%s@%d.%d", page, t.ID, t.UpdatedAt.UnixNano())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tmpl, ok := r.cache[key]; ok {
		return tmpl, nil
	}
	tmpl := template.New("base").Funcs(r.funcs)
	for _, file := range []string{"layouts/base.html", page} {
		src, err := fs.ReadFile(r.fsys, file)
		if err != nil {
			return nil, fmt.Errorf("view: %w", err)
		}
		if _, err := tmpl.New(file).Parse(string(src)); err != nil {
			return nil, fmt.Errorf("view: %s: %w", file, err)
		}
	}
	// A commune's override redefines named blocks ("header", "footer", a
	// page's "content"…); a broken override must not take the portal down.
	if t != nil {
		for name, src := range t.TemplateOverrides {
			if _, err := tmpl.New("override/" + name).Parse(src); err != nil {
				return nil, fmt.Errorf("view: override %s of %s: %w", name, t.Slug, err)
			}
		}
	}
	if len(r.cache) > 2000 {
		r.cache = map[string]*template.Template{}
	}
	r.cache[key] = tmpl
	return tmpl, nil
}
