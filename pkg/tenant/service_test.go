package tenant_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"

	"portail/pkg/audit"
	"portail/pkg/dbtest"
	"portail/pkg/tenant"
)

// newCommune is a valid commune's settings.
func newCommune(slug, numcli string) tenant.Settings {
	s := tenant.DefaultSettings()
	s.Slug, s.Name, s.ServiceLabel = slug, "MAIRIE DE "+strings.ToUpper(slug), "Facturation"
	s.Hosts.Primary = slug + ".localhost"
	s.Contact.Email = "service@" + slug + ".localhost"
	s.PayFiP.Numcli = numcli
	return s
}

func service(t *testing.T) (*tenant.Service, *sqlx.DB) {
	d := dbtest.New(t)
	return tenant.NewService(d, tenant.NewStore(d)), d
}

// fieldError returns the FieldError of err about field, or fails.
func fieldError(t *testing.T, err error, field string) *tenant.FieldError {
	t.Helper()
	for _, fe := range tenant.FieldErrors(err) {
		if fe.Field == field {
			return fe
		}
	}
	t.Fatalf("want an error naming %s, got %v", field, err)
	return nil
}

func TestHostOfAnotherCommuneRefused(t *testing.T) {
	svc, d := service(t)
	ctx := context.Background()
	a, err := svc.Create(ctx, newCommune("a", "000001"))
	if err != nil {
		t.Fatal(err)
	}
	b := newCommune("b", "000002")
	b.Hosts.Primary = "a.localhost"
	_, err = svc.Create(ctx, b)
	if fe := fieldError(t, err, "hosts.primary"); !strings.Contains(fe.Problem, "already used by the commune a") {
		t.Fatalf("message does not name the owner: %v", fe)
	}
	bt, err := svc.Create(ctx, newCommune("b", "000002"))
	if err != nil {
		t.Fatal(err)
	}
	next := bt.Settings()
	next.Hosts.Aliases = []string{"www.b.localhost", "a.localhost"}
	_, err = svc.Update(ctx, bt.ID, bt.Version, next, tenant.GroupIdentity)
	fieldError(t, err, "hosts.aliases[1]")
	var owner int64
	d.Get(&owner, `SELECT tenant_id FROM tenant_hosts WHERE host = 'a.localhost'`)
	if owner != a.ID {
		t.Fatalf("a.localhost moved to %d", owner)
	}
	// The same collectivity id twice is refused too.
	c := newCommune("c", "000001")
	_, err = svc.Create(ctx, c)
	fieldError(t, err, "payfip.numcli")
}

func TestBadSlugsAndHostsRefused(t *testing.T) {
	svc, _ := service(t)
	ctx := context.Background()
	cases := []struct {
		name, slug, host, field, says string
	}{
		{"slug with capitals", "Sistec", "x.localhost", "slug", "lower-case"},
		{"slug with a space", "sis tec", "x.localhost", "slug", "lower-case"},
		{"slug with an accent", "sisteç", "x.localhost", "slug", "lower-case"},
		{"host with capitals", "x", "SISTEC.localhost", "hosts.primary", "lower case"},
		{"host with a space", "x", "sis tec.localhost", "hosts.primary", "spaces"},
		{"host with a port", "x", "x.localhost:8080", "hosts.primary", "port"},
		{"IDN not in punycode", "x", "mairie-sévérac.fr", "hosts.primary", "punycode (xn--mairie-svrac-iebb.fr)"},
		{"trailing dot", "x", "x.localhost.", "hosts.primary", "dot"},
		{"bad punycode", "x", "xn--zz.fr", "hosts.primary", "punycode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newCommune("x", "000009")
			s.Slug, s.Hosts.Primary = tc.slug, tc.host
			_, err := svc.Create(ctx, s)
			if fe := fieldError(t, err, tc.field); !strings.Contains(fe.Problem, tc.says) {
				t.Fatalf("%s: %q does not say %q", tc.field, fe.Problem, tc.says)
			}
		})
	}
	// Punycode is the way to write an international name.
	s := newCommune("severac", "000010")
	s.Hosts.Primary = "xn--mairie-svrac-iebb.fr"
	if _, err := svc.Create(ctx, s); err != nil {
		t.Fatalf("punycode host refused: %v", err)
	}
}

func TestNumcliMustBeSixDigits(t *testing.T) {
	for _, numcli := range []string{"00420", "0042001", "00420A", ""} {
		s := newCommune("a", numcli)
		err := tenant.ValidateGroup(tenant.GroupPayFiP, &s)
		if fe := fieldError(t, err, "payfip.numcli"); !strings.Contains(fe.Problem, "exactly 6 digits") {
			t.Fatalf("%q: %v", numcli, fe)
		}
	}
	s := newCommune("a", "004200")
	if err := tenant.ValidateGroup(tenant.GroupPayFiP, &s); err != nil {
		t.Fatal(err)
	}
}

const goodSVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><title>Blason</title><defs><linearGradient id="g"><stop offset="0" stop-color="#fff"/></linearGradient></defs><rect width="10" height="10" fill="url(#g)" style="stroke: url(#g)"/></svg>`

// TestLogoAttacksRefused: an SVG that could run or fetch anything is
// refused (not rewritten), naming what is wrong; so is a logo too large.
func TestLogoAttacksRefused(t *testing.T) {
	svc, d := service(t)
	ctx := context.Background()
	created, err := svc.Create(ctx, newCommune("a", "000001"))
	if err != nil {
		t.Fatal(err)
	}
	svg := func(body string) string {
		return `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 10 10">` + body + `</svg>`
	}
	cases := []struct{ name, logo, says string }{
		{"script", svg(`<script>alert(1)</script>`), "<script>"},
		{"script in CDATA", svg(`<script><![CDATA[alert(1)]]></script>`), "<script>"},
		{"event handler", `<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><rect width="1" height="1"/></svg>`, "onload"},
		{"event handler on a shape", svg(`<rect width="1" height="1" onclick="alert(1)"/>`), "onclick"},
		{"href to http", svg(`<use href="http://evil.example/x.svg#a"/>`), "http://evil.example"},
		{"xlink:href to javascript", svg(`<use xlink:href="javascript:alert(1)"/>`), "javascript:alert(1)"},
		{"image", svg(`<image href="https://evil.example/p.png" width="1" height="1"/>`), "<image>"},
		{"CSS url() in style attribute", svg(`<rect width="1" height="1" style="fill: url(https://evil.example/t)"/>`), "url(https://evil.example/t)"},
		{"CSS url() in fill", svg(`<rect width="1" height="1" fill="url('//evil.example/t')"/>`), "external resource"},
		{"CSS @import in style element", svg(`<style>@import url(https://evil.example/a.css);</style>`), "@import"},
		{"foreignObject", svg(`<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>`), "<foreignObject>"},
		{"animate setting an href", svg(`<a><animate attributeName="href" to="javascript:alert(1)"/></a>`), "not allowed"},
		{"entity declaration", `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg">&x;</svg>`, "DOCTYPE"},
		{"not svg nor png", "GIF89a....", "PNG or an SVG"},
		{"truncated png", "\x89PNG\r\n\x1a\n\x00\x00", "not a valid PNG"},
		{"20 MB", strings.Repeat("<!-- x -->", 2<<20), "may not exceed 256 KiB"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			next := created.Settings()
			next.Branding.LogoData = []byte(tc.logo)
			_, err := svc.Update(ctx, created.ID, created.Version, next, tenant.GroupBranding)
			if fe := fieldError(t, err, "branding.logo"); !strings.Contains(fe.Problem, tc.says) {
				t.Fatalf("%q does not say %q", fe.Problem, tc.says)
			}
		})
	}
	var n int
	d.Get(&n, `SELECT count(*) FROM tenants WHERE logo IS NOT NULL`)
	if n != 0 {
		t.Fatal("a refused logo was stored")
	}
	// Good logos: a clean SVG (local url(#id) references), a PNG, the demo ones.
	var pngBuf bytes.Buffer
	png.Encode(&pngBuf, image.NewRGBA(image.Rect(0, 0, 4, 4)))
	demo, _ := os.ReadFile("../../tenants/sistec/logo.svg")
	version := created.Version
	for name, logo := range map[string][]byte{"svg": []byte(goodSVG), "png": pngBuf.Bytes(), "demo": demo} {
		next := created.Settings()
		next.Branding.LogoData = logo
		got, err := svc.Update(ctx, created.ID, version, next, tenant.GroupBranding)
		if err != nil {
			t.Fatalf("%s logo refused: %v", name, err)
		}
		version = got.Version
		if want := map[string]string{"png": tenant.LogoPNG}[name]; want != "" && got.LogoType != want {
			t.Fatalf("png stored as %q", got.LogoType)
		}
	}
}

func TestPrimaryColourMustCarryWhiteText(t *testing.T) {
	s := newCommune("a", "000001")
	s.Branding.Colors.Primary = "#f2a900" // white on amber: about 2:1
	err := tenant.ValidateGroup(tenant.GroupBranding, &s)
	fe := fieldError(t, err, "branding.colors.primary")
	if !strings.Contains(fe.Problem, "white text") || !strings.Contains(fe.Problem, "4.5:1") || !strings.Contains(fe.Problem, "2.00:1") {
		t.Fatalf("contrast message: %q", fe.Problem)
	}
	s.Branding.Colors.Primary = "#1d4e89"
	if err := tenant.ValidateGroup(tenant.GroupBranding, &s); err != nil {
		t.Fatal(err)
	}
	if r := tenant.Contrast("#000000", "#ffffff"); r < 20.99 || r > 21.01 {
		t.Fatalf("black on white: %v", r)
	}
	if r := tenant.Contrast("#767676", "#ffffff"); r < 4.5 || r > 4.6 {
		t.Fatalf("#767676 on white: %v (the lightest grey passing AA)", r)
	}
}

// TestConcurrentEditsOfACommune: two people open the same form; the first
// saves; the second is told who changed what, and nothing is lost.
func TestConcurrentEditsOfACommune(t *testing.T) {
	svc, d := service(t)
	ctx := context.Background()
	base, err := svc.Create(ctx, newCommune("a", "000001"))
	if err != nil {
		t.Fatal(err)
	}
	var staffID int64
	d.Get(&staffID, `INSERT INTO staff_users (email, name, password_hash) VALUES ('marie@a.fr', 'Marie Martin', 'x') RETURNING id`)
	first := base.Settings()
	first.Contact.Phone = "05 00 00 00 01"
	ctxMarie := audit.WithActor(ctx, audit.Actor{Kind: audit.KindStaff, ID: staffID, IP: "192.0.2.1"})
	if _, err := svc.Update(ctxMarie, base.ID, base.Version, first, tenant.GroupContact); err != nil {
		t.Fatal(err)
	}
	second := base.Settings()
	second.Contact.Hours = "le lundi"
	_, err = svc.Update(ctx, base.ID, base.Version, second, tenant.GroupContact)
	var stale *tenant.StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("stale update: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "modifiés entre-temps par Marie Martin") || !strings.Contains(msg, "contact.phone") {
		t.Fatalf("stale message does not say who and what: %q", msg)
	}
	now, _ := svc.Store.BySlug(ctx, "a")
	if now.ContactPhone != "05 00 00 00 01" || now.ContactHours != "" || now.Version != base.Version+1 {
		t.Fatalf("after the refused update: phone %q hours %q version %d", now.ContactPhone, now.ContactHours, now.Version)
	}
	// Based on the current version, the second change goes through.
	second = now.Settings()
	second.Contact.Hours = "le lundi"
	if _, err := svc.Update(ctx, now.ID, now.Version, second, tenant.GroupContact); err != nil {
		t.Fatal(err)
	}
	// Suspending is versioned the same way.
	if _, err := svc.Suspend(ctx, now.ID, now.Version); !errors.As(err, &stale) {
		t.Fatalf("stale suspension: %v", err)
	}
}

// TestAuditRecordsBeforeAndAfter: who changed which field from what to
// what, in the commune's trail; an update that changes nothing writes
// nothing.
func TestAuditRecordsBeforeAndAfter(t *testing.T) {
	svc, d := service(t)
	ctx := context.Background()
	cur, err := svc.Create(tenant.WithCommandLineUser(ctx, "ops"), newCommune("a", "000001"))
	if err != nil {
		t.Fatal(err)
	}
	next := cur.Settings()
	next.Contact.Phone = "05 61 00 00 00"
	next.Name = "must be ignored: not in the group"
	ctxStaff := audit.WithActor(ctx, audit.Actor{Kind: audit.KindStaff, ID: 7, IP: "192.0.2.7"})
	upd, err := svc.Update(ctxStaff, cur.ID, cur.Version, next, tenant.GroupContact)
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != cur.Name {
		t.Fatalf("a field outside the group changed: %q", upd.Name)
	}
	if again, err := svc.Update(ctxStaff, upd.ID, upd.Version, next, tenant.GroupContact); err != nil || again.Version != upd.Version {
		t.Fatalf("no-op update: version %d → %d, %v", upd.Version, again.Version, err)
	}
	entries, _, err := audit.Search(ctx, d, cur.ID, audit.Filter{ObjectType: audit.ObjectTenant}, 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("%d entries, want created + updated", len(entries))
	}
	u, c := entries[0], entries[1]
	var details struct {
		Version int64           `json:"version"`
		Changes []tenant.Change `json:"changes"`
		OSUser  string          `json:"os_user"`
	}
	json.Unmarshal(u.Details, &details)
	if u.Action != tenant.ActionUpdated || u.ActorKind != audit.KindStaff || u.ActorID != 7 || u.IP != "192.0.2.7" ||
		!reflect.DeepEqual(details.Changes, []tenant.Change{{Field: "contact.phone", Before: "", After: "05 61 00 00 00"}}) ||
		details.Version != 2 {
		t.Fatalf("update entry: %+v %s", u, u.Details)
	}
	details.OSUser = ""
	json.Unmarshal(c.Details, &details)
	if c.Action != tenant.ActionCreated || c.ActorKind != audit.KindSystem || details.OSUser != "ops" {
		t.Fatalf("create entry: %+v %s", c, c.Details)
	}
}

// rows dumps a commune's rows without what differs by nature between two
// databases (ids, times, who wrote it, the apply bookkeeping).
func rows(t *testing.T, d *sqlx.DB, slug string) string {
	t.Helper()
	var row, hosts string
	if err := d.Get(&row, `SELECT (to_jsonb(t) - 'id' - 'created_at' - 'updated_at' - 'updated_by' - 'last_applied')::text
		FROM tenants t WHERE slug = $1`, slug); err != nil {
		t.Fatal(err)
	}
	if err := d.Get(&hosts, `SELECT string_agg(host || ':' || is_primary, ',' ORDER BY host) FROM tenant_hosts
		WHERE tenant_id = (SELECT id FROM tenants WHERE slug = $1)`, slug); err != nil {
		t.Fatal(err)
	}
	return row + "\n" + hosts
}

// TestYAMLGivesTheRowsOfTheService: a commune created through the service
// (as the console does), and the same commune written as tenant.yaml and
// applied on another database, give the same rows.
func TestYAMLGivesTheRowsOfTheService(t *testing.T) {
	ctx := context.Background()
	s := newCommune("test", "004299")
	s.Name, s.ServiceLabel = "Mairie de Test", "Facturation Cantine"
	s.Hosts.Aliases = []string{"www.test.localhost"}
	s.Branding.Colors.Primary, s.Branding.Colors.Accent = "#2d6a3e", "#7a3b8f"
	s.Branding.LogoData = []byte(goodSVG)
	s.Contact.Phone, s.Contact.Hours = "05 00 00 00 00", "le mardi"
	s.Texts = tenant.Texts{Welcome: "Bienvenue", Notice: "Travaux\nle 3 mars", NoticeFrom: "2026-03-01", NoticeUntil: "2026-03-05"}
	s.PayFiP.Mode, s.PayFiP.RetryDelay, s.PayFiP.MaxCents = "classic", "90m", 500000
	s.PayFiP.Endpoints.ClassicURL = "https://qualif.example/tpa/paiement.web"
	s.PayFiP.Endpoints.CallbackNetworks = []string{"192.0.2.0/24"}
	s.Payments = tenant.Payments{BatchAllowed: true, BatchMax: 5}
	s.Accounts.PasswordMinLength = 12
	s.Features.Paperless = false
	s.Reminders = tenant.Reminders{Enabled: true, DaysBefore: 7}

	console, d1 := service(t)
	if _, err := console.Create(ctx, s); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := s.Marshal("logo.svg")
	if err != nil {
		t.Fatal(err)
	}
	writeTenant(t, dir, "test", string(b))
	os.WriteFile(filepath.Join(dir, "test", "logo.svg"), []byte(goodSVG), 0o644)
	files, err := tenant.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	yaml, d2 := service(t)
	if _, err := yaml.Apply(ctx, files, tenant.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	if a, b := rows(t, d1, "test"), rows(t, d2, "test"); a != b {
		t.Fatalf("rows differ:\nservice: %s\nyaml:    %s", a, b)
	}
	if !strings.Contains(rows(t, d1, "test"), `"payfip_retry_minutes": 90`) {
		t.Fatal("rows not as expected")
	}
}

// TestExportThenApplyIsANoOp: YAML → database → YAML gives the same
// settings, and applying the export changes nothing.
func TestExportThenApplyIsANoOp(t *testing.T) {
	svc, d := service(t)
	ctx := context.Background()
	files, err := tenant.LoadDir("../../tenants")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, files, tenant.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, f := range files {
		before[f.Slug] = rows(t, d, f.Slug)
	}
	out := t.TempDir()
	for _, f := range files {
		set, overrides, err := svc.Store.Export(ctx, f.Slug)
		if err != nil {
			t.Fatal(err)
		}
		logo := tenant.LogoFileName(set.Branding.LogoType)
		b, err := set.Marshal(logo)
		if err != nil {
			t.Fatal(err)
		}
		writeTenant(t, out, f.Slug, string(b))
		os.WriteFile(filepath.Join(out, f.Slug, logo), set.Branding.LogoData, 0o644)
		for name, src := range overrides {
			os.MkdirAll(filepath.Join(out, f.Slug, "templates"), 0o755)
			os.WriteFile(filepath.Join(out, f.Slug, "templates", name), []byte(src), 0o644)
		}
	}
	exported, err := tenant.LoadDir(out)
	if err != nil {
		t.Fatalf("export does not load: %v", err)
	}
	for i, f := range files {
		want, got := f.Settings, exported[i].Settings
		want.Branding.Logo, got.Branding.Logo = "", ""
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("%s round trip:\nyaml:   %+v\nexport: %+v", f.Slug, want, got)
		}
		if !reflect.DeepEqual(f.Overrides(), exported[i].Overrides()) {
			t.Fatalf("%s overrides differ", f.Slug)
		}
	}
	res, err := svc.Apply(ctx, exported, tenant.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Changed || r.Created {
			t.Fatalf("applying the export changed %s: %+v", r.Slug, r.Changes)
		}
		if got := rows(t, d, r.Slug); got != before[r.Slug] {
			t.Fatalf("%s rows changed:\n%s\n%s", r.Slug, before[r.Slug], got)
		}
	}
}

// TestApplyRefusesToOverwriteChangesMadeElsewhere: a field changed through
// the service since the last apply is not overwritten by the YAML unless
// forced; the refusal shows the difference.
func TestApplyRefusesToOverwriteChangesMadeElsewhere(t *testing.T) {
	svc, _ := service(t)
	ctx := context.Background()
	dir := t.TempDir()
	yamlOf := func(label, phone string) string {
		return fmt.Sprintf("slug: a\nname: A\nservice_label: %q\nhosts:\n  primary: a.localhost\n"+
			"contact:\n  email: service@a.localhost\n  phone: %q\npayfip:\n  numcli: \"000001\"\n", label, phone)
	}
	writeTenant(t, dir, "a", yamlOf("Facturation", "05 00 00 00 00"))
	load := func() []*tenant.File {
		files, err := tenant.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	if _, err := svc.Apply(ctx, load(), tenant.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	cur, _ := svc.Store.BySlug(ctx, "a")
	next := cur.Settings()
	next.Contact.Phone = "05 99 99 99 99"
	cur, err := svc.Update(ctx, cur.ID, cur.Version, next, tenant.GroupContact)
	if err != nil {
		t.Fatal(err)
	}
	// The YAML changes another field: applied, the console's change kept.
	writeTenant(t, dir, "a", yamlOf("Eau", "05 00 00 00 00"))
	var conflict *tenant.ConflictError
	_, err = svc.Apply(ctx, load(), tenant.ApplyOptions{})
	if !errors.As(err, &conflict) {
		t.Fatalf("apply over the console's change: %v", err)
	}
	want := `a: contact.phone: YAML "05 00 00 00 00" → database "05 99 99 99 99"`
	if !strings.Contains(err.Error(), want) || len(conflict.Conflicts) != 1 {
		t.Fatalf("conflict does not show the difference %q:\n%v", want, err)
	}
	if now, _ := svc.Store.BySlug(ctx, "a"); now.Version != cur.Version || now.ServiceLabel != "Facturation" {
		t.Fatalf("a refused apply wrote something: %+v", now)
	}
	// Once the YAML says what the database holds, it applies.
	writeTenant(t, dir, "a", yamlOf("Eau", "05 99 99 99 99"))
	if _, err := svc.Apply(ctx, load(), tenant.ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	// A later console change, then --force: the YAML wins.
	cur, _ = svc.Store.BySlug(ctx, "a")
	next = cur.Settings()
	next.Contact.Phone = "05 11 11 11 11"
	if _, err := svc.Update(ctx, cur.ID, cur.Version, next, tenant.GroupContact); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Apply(ctx, load(), tenant.ApplyOptions{}); !errors.As(err, &conflict) {
		t.Fatalf("second conflict: %v", err)
	}
	res, err := svc.Apply(ctx, load(), tenant.ApplyOptions{Force: true})
	if err != nil || !res[0].Changed {
		t.Fatalf("forced apply: %+v %v", res, err)
	}
	if now, _ := svc.Store.BySlug(ctx, "a"); now.ContactPhone != "05 99 99 99 99" || now.ServiceLabel != "Eau" {
		t.Fatalf("after --force: %q %q", now.ContactPhone, now.ServiceLabel)
	}
}

func TestSetFieldByDottedName(t *testing.T) {
	s := newCommune("a", "000001")
	for _, kv := range [][2]string{
		{"contact.phone", "05 61 00 00 00"}, {"payfip.numcli", "004200"}, {"payments.batch_allowed", "true"},
		{"payments.batch_max", "5"}, {"hosts.aliases", "www.a.localhost, b.localhost"}, {"texts.notice", ""},
	} {
		if _, err := tenant.SetField(&s, kv[0], kv[1]); err != nil {
			t.Fatalf("%s=%s: %v", kv[0], kv[1], err)
		}
	}
	if s.Contact.Phone != "05 61 00 00 00" || s.Contact.Email != "service@a.localhost" || s.PayFiP.Numcli != "004200" ||
		s.PayFiP.Mode != "ws" || !s.Payments.BatchAllowed || s.Payments.BatchMax != 5 ||
		strings.Join(s.Hosts.Aliases, " ") != "www.a.localhost b.localhost" || s.Hosts.Primary != "a.localhost" {
		t.Fatalf("after set: %+v", s)
	}
	for _, bad := range []string{"slug", "status", "colour", "payments.batch_max"} {
		if _, err := tenant.SetField(&s, bad, "x"); err == nil {
			t.Fatalf("%s=x accepted", bad)
		}
	}
}
