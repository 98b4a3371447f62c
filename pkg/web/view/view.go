// Package view renders html/template pages inside their family's layout:
// residents' pages in layouts/base.html, with a commune's branding and its
// optional template overrides; the staff's pages ("admin/…") in
// layouts/admin.html with the list partials of layouts/lists.html, where
// the template function `can "invoices:write"` tells whether the staff
// member of the request may use a permission (links and buttons they may
// not use are not shown).
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

	"portail/pkg/paris"
	"portail/pkg/tenant"
)

// Page is what every template receives.
type Page struct {
	Tenant    *tenant.Tenant
	Viewer    *Viewer // the logged-in resident, nil on public pages
	Staff     *Staff  // the staff member of an /admin page, nil on public ones
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

// Staff is the staff member of a page as the admin layout shows them.
type Staff struct {
	Name      string
	Email     string
	Role      string // the role in this commune: `can` is bound to it
	RoleLabel string
	// Ready: past the second factor (and its enrolment): the menu is shown.
	Ready bool
	Menu  []MenuEntry
}

// MenuEntry is a screen of the staff's menu, shown when `can` allows Perm.
type MenuEntry struct {
	Label   string
	Path    string
	Perm    string
	Section string // Page.Section of its pages
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

// Renderer parses pages lazily and caches them per tenant version and
// staff role.
type Renderer struct {
	fsys  fs.FS
	funcs template.FuncMap
	can   func(role, perm string) bool

	mu    sync.Mutex
	cache map[string]*template.Template
}

// New returns a renderer over the templates file system; can tells
// whether a staff role may use a permission (the `can` template function).
func New(fsys fs.FS, funcs template.FuncMap, can func(role, perm string) bool) *Renderer {
	// Dates are shown as residents live them, in Paris, whatever the
	// server's own zone (UTC in a container): a payment made at 00:30 in
	// Paris is dated that day. DATE columns arrive as UTC midnight, which is
	// the same day in Paris.
	base := template.FuncMap{
		"date": func(t any) string {
			switch v := t.(type) {
			case time.Time:
				return v.In(paris.Location).Format("02/01/2006")
			case *time.Time:
				if v != nil {
					return v.In(paris.Location).Format("02/01/2006")
				}
			}
			return ""
		},
		"datetime": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return t.In(paris.Location).Format("02/01/2006 15:04")
		},
		"lines": func(s string) []string {
			return strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
		},
	}
	for k, v := range funcs {
		base[k] = v
	}
	return &Renderer{fsys: fsys, funcs: base, can: can, cache: map[string]*template.Template{}}
}

// Render writes page (e.g. "resident/login.html") inside the layout.
func (r *Renderer) Render(w http.ResponseWriter, status int, page string, p Page) error {
	role := ""
	if p.Staff != nil {
		role = p.Staff.Role
	}
	tmpl, err := r.lookup(page, p.Tenant, role)
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

// staffPage tells the staff's pages, which have their own layout.
func staffPage(page string) bool { return strings.HasPrefix(page, "admin/") }

func (r *Renderer) lookup(page string, t *tenant.Tenant, role string) (*template.Template, error) {
	files := []string{"layouts/base.html", "layouts/home_texts.html", page}
	overrides := t != nil && len(t.TemplateOverrides) > 0
	if staffPage(page) {
		// The commune's overrides dress the residents' portal only.
		// Partials shared by several staff screens (admin/partials/*.html:
		// the invoice table of "Factures" and of a payer's page…).
		partials, err := fs.Glob(r.fsys, "admin/partials/*.html")
		if err != nil {
			return nil, fmt.Errorf("view: %w", err)
		}
		files = append([]string{"layouts/admin.html", "layouts/lists.html", "layouts/home_texts.html"}, append(partials, page)...)
		overrides = false
	}
	key := page + "@" + role
	if overrides {
		key = fmt.Sprintf("%s@%s@%d.%d", page, role, t.ID, t.UpdatedAt.UnixNano())
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if tmpl, ok := r.cache[key]; ok {
		return tmpl, nil
	}
	funcs := template.FuncMap{"can": func(perm string) bool { return role != "" && r.can != nil && r.can(role, perm) }}
	tmpl := template.New("base").Funcs(r.funcs).Funcs(funcs)
	for _, file := range files {
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
	if overrides {
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
