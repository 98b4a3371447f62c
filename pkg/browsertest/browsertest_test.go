package browsertest_test

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"

	"portail/pkg/browsertest"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// layout wraps content in an accessible French page.
func layout(title, body string) string {
	return `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>` + title + ` – Portail des factures</title></head>
<body><main><h1>` + title + `</h1>` + body + `</main></body></html>`
}

const loginForm = `<form method="post" action="/connexion">
<p><label for="mail">Adresse mail <abbr title="obligatoire">*</abbr></label> <input id="mail" name="email" type="email" required></p>
<p><label>Mot de passe <input name="password" type="password"></label></p>
<p><label for="commune">Commune</label> <select id="commune" name="commune">
  <option value="">Choisissez</option><option value="sistec">Sistec-sur-Mer</option><option value="demo">Démo</option></select></p>
<p><input id="souvenir" name="souvenir" type="checkbox" value="1"><label for="souvenir">Se souvenir de moi</label></p>
<p><button type="submit">Se connecter</button></p>
</form>
<p><a href="/aide">Besoin d’aide ?</a></p>`

// portal is a tiny French web site with a session cookie.
func portal() http.Handler {
	mux := http.NewServeMux()
	write := func(w http.ResponseWriter, status int, page string) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprint(w, page)
	}
	session := func(r *http.Request) string {
		c, err := r.Cookie("session")
		if err != nil {
			return ""
		}
		return c.Value
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		write(w, 200, layout("Connexion", loginForm))
	})
	mux.HandleFunc("POST /connexion", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("password") != "s3cret" {
			write(w, 401, layout("Connexion", `<p role="alert">Mot de passe incorrect.</p>`+loginForm))
			return
		}
		val := r.PostForm.Get("email") + "|" + r.PostForm.Get("commune") + "|" + r.PostForm.Get("souvenir")
		http.SetCookie(w, &http.Cookie{Name: "session", Value: val, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/tableau-de-bord", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /tableau-de-bord", func(w http.ResponseWriter, r *http.Request) {
		s := session(r)
		if s == "" {
			write(w, 401, layout("Connexion requise", `<p>Veuillez vous connecter.</p>`))
			return
		}
		parts := strings.SplitN(s, "|", 3)
		body := fmt.Sprintf(`<p>Bonjour %s</p><p>Commune : %s</p><p>Mémorisé : %t</p>
<p><a href="/facture.pdf">Télécharger la facture de mars</a></p>
<p><a href="/inaccessible">Ancienne page</a></p>
<p><button type="button" onclick="document.getElementById('r').textContent = 'Facture payée'">Payer</button></p>
<p id="r" role="status"></p>`, html.EscapeString(parts[0]), html.EscapeString(parts[1]), parts[2] == "1")
		write(w, 200, layout("Mes factures", body))
	})
	mux.HandleFunc("GET /facture.pdf", func(w http.ResponseWriter, r *http.Request) {
		if session(r) == "" {
			http.Error(w, "interdit", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/pdf")
		w.Header().Set("Content-Disposition", `attachment; filename="facture-mars.pdf"`)
		io.WriteString(w, "%PDF-1.4\n% facture de mars\n%%EOF\n")
	})
	mux.HandleFunc("GET /aide", func(w http.ResponseWriter, r *http.Request) {
		write(w, 200, layout("Aide", `<p>Écrivez à la mairie.</p>
<p><a href="/modifier/1">Modifier</a> <a href="/modifier/2">Modifier</a></p>
<p><a href="/"><span aria-hidden="true">←</span> Retour</a></p>`))
	})
	mux.HandleFunc("GET /hote", func(w http.ResponseWriter, r *http.Request) {
		write(w, 200, layout("Hôte", `<p>Hôte : `+html.EscapeString(r.Host)+`</p>`))
	})
	mux.HandleFunc("GET /inaccessible", func(w http.ResponseWriter, r *http.Request) {
		// Broken on purpose: image link without a name, field without a
		// label, pale text.
		write(w, 200, `<!DOCTYPE html><html lang="fr"><head><title>Ancienne page</title></head><body><main>
<a href="/"><img src="/logo.png"></a>
<form><input type="text" name="recherche"></form>
<p style="color:#ddd;background:#fff">Texte très pâle</p>
</main></body></html>`)
	})
	mux.HandleFunc("GET /logo.png", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		write(w, 404, layout("Page introuvable", `<p>Cette page n’existe pas.</p>`))
	})
	return mux
}

func startPortal(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(portal())
	t.Cleanup(srv.Close)
	return srv
}

// recorder is a testing.TB that, inside catch, keeps the failures instead of
// failing, to test that the harness does fail a test. Outside catch it fails
// the real test.
type recorder struct {
	testing.TB
	mu       sync.Mutex
	catching bool
	msgs     []string
}

func (r *recorder) Errorf(format string, args ...any) { r.fail(false, fmt.Sprintf(format, args...)) }
func (r *recorder) Error(args ...any)                 { r.fail(false, fmt.Sprint(args...)) }
func (r *recorder) Fatalf(format string, args ...any) { r.fail(true, fmt.Sprintf(format, args...)) }
func (r *recorder) Fatal(args ...any)                 { r.fail(true, fmt.Sprint(args...)) }
func (r *recorder) FailNow()                          { r.fail(true, "FailNow") }
func (r *recorder) Fail()                             { r.fail(false, "Fail") }

func (r *recorder) fail(fatal bool, msg string) {
	r.TB.Helper()
	r.mu.Lock()
	catching := r.catching
	if catching {
		r.msgs = append(r.msgs, msg)
	}
	r.mu.Unlock()
	switch {
	case !catching && fatal:
		r.TB.Fatal(msg)
	case !catching:
		r.TB.Error(msg)
	case fatal:
		runtime.Goexit() // ends the goroutine of catch
	}
}

// catch runs f and returns the failures that it reported.
func (r *recorder) catch(f func()) string {
	r.mu.Lock()
	r.catching, r.msgs = true, nil
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	r.catching = false
	return strings.Join(r.msgs, "\n")
}

func timed(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("%-40s %v", what, time.Since(start).Round(time.Millisecond))
}

func TestLoginFormAndDownload(t *testing.T) {
	srv := startPortal(t)
	var p *browsertest.Page
	timed(t, "New", func() { p = browsertest.New(t) })
	timed(t, "Visit /", func() { p.Visit(srv.URL + "/") })
	if got := p.Title(); got != "Connexion – Portail des factures" {
		t.Errorf("Title() = %q", got)
	}
	if p.Status() != 200 {
		t.Errorf("Status() = %d, want 200", p.Status())
	}
	timed(t, "Fill x3 + Check", func() {
		p.Fill("Adresse mail", "alice@example.fr") // the label is "Adresse mail *"
		p.Fill("Mot de passe", "s3cret")           // a wrapping label
		p.Fill("Commune", "Sistec-sur-Mer")
		p.Check("Se souvenir de moi")
		p.Check("Se souvenir de moi") // already ticked: no-op
	})
	timed(t, "ClickText submit (POST→303→GET)", func() { p.ClickText("Se connecter") })
	p.MustSee("Bonjour alice@example.fr", "Commune : sistec", "Mémorisé : true")
	p.MustNotSee("Mot de passe incorrect")
	if !strings.HasSuffix(p.URL(), "/tableau-de-bord") {
		t.Errorf("URL() = %q, want the dashboard after the redirect", p.URL())
	}
	if p.Status() != 200 {
		t.Errorf("Status() = %d after the redirect, want 200", p.Status())
	}

	timed(t, "ClickText without navigation", func() { p.ClickText("Payer") })
	p.MustSee("Facture payée")

	var cookies []string
	for _, c := range p.Cookies() {
		cookies = append(cookies, fmt.Sprintf("%s httpOnly=%t", c.Name, c.HTTPOnly))
	}
	if strings.Join(cookies, ",") != "session httpOnly=true" {
		t.Errorf("Cookies() = %v, want the HttpOnly session", cookies)
	}

	// A PDF is downloaded with the page's cookies, as the browser would.
	var status int
	var body []byte
	var headers map[string]string
	timed(t, "Fetch PDF", func() { status, body, headers = p.Fetch(srv.URL + "/facture.pdf") })
	if status != 200 || !bytes.HasPrefix(body, []byte("%PDF-")) || headers["Content-Type"] != "application/pdf" {
		t.Errorf("Fetch = %d %q %v, want the PDF", status, body, headers)
	}
	// A click on the download link keeps the page, as in a real browser.
	timed(t, "ClickText download link", func() { p.ClickText("Télécharger la facture de mars") })
	p.MustSee("Bonjour alice@example.fr")
}

func TestWrongPasswordShowsStatus(t *testing.T) {
	srv := startPortal(t)
	p := browsertest.New(t)
	p.Visit(srv.URL + "/")
	p.Fill("Adresse mail", "alice@example.fr")
	p.Fill("Mot de passe", "faux")
	p.ClickText("Se connecter")
	p.MustSee("Mot de passe incorrect.")
	if p.Status() != 401 {
		t.Errorf("Status() = %d, want 401", p.Status())
	}
	p.Visit(srv.URL + "/nulle-part")
	if p.Status() != 404 {
		t.Errorf("Status() = %d, want 404", p.Status())
	}
	p.MustSee("Cette page n’existe pas")
}

func TestInaccessiblePageFails(t *testing.T) {
	srv := startPortal(t)
	rec := &recorder{TB: t}
	p := browsertest.New(rec)

	// Visit reports the serious violations as test errors.
	var report string
	timed(t, "Visit inaccessible page", func() { report = rec.catch(func() { p.Visit(srv.URL + "/inaccessible") }) })
	for _, want := range []string{"serious or critical accessibility violation", "image-alt", "link-name", "label", "color-contrast", "Texte très pâle"} {
		if !strings.Contains(report, want) {
			t.Errorf("Visit report lacks %q:\n%s", want, report)
		}
	}
	t.Logf("the harness reported:\n%s", report)

	// AxeViolations gives the same result without failing.
	got := map[string]string{}
	for _, v := range p.AxeViolations() {
		got[v.ID] = v.Impact
	}
	for _, id := range []string{"image-alt", "link-name", "label", "color-contrast"} {
		if impact := got[id]; impact != "serious" && impact != "critical" {
			t.Errorf("AxeViolations()[%s] impact = %q, want serious or critical (all: %v)", id, impact, got)
		}
	}

	// The same content is not checked twice...
	if again := rec.catch(func() { p.Visit(srv.URL + "/inaccessible") }); again != "" {
		t.Errorf("a second visit of the same content reported again:\n%s", again)
	}
	// ...but a page reached by a click is checked.
	p2 := browsertest.New(rec)
	p2.SetCookie(sessionCookie(srv))
	p2.Visit(srv.URL + "/tableau-de-bord")
	if report := rec.catch(func() { p2.ClickText("Ancienne page") }); !strings.Contains(report, "image-alt") {
		t.Errorf("ClickText to an inaccessible page reported %q, want image-alt", report)
	}
}

func sessionCookie(srv *httptest.Server) *network.Cookie {
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	return &network.Cookie{Name: "session", Value: "bob@example.fr|demo|", Domain: host, Path: "/", HTTPOnly: true, Session: true}
}

func TestAccessibleAndAccessibilityFree(t *testing.T) {
	srv := startPortal(t)
	rec := &recorder{TB: t}
	p := browsertest.New(rec)
	if report := rec.catch(func() { p.Visit(srv.URL + "/") }); report != "" {
		t.Errorf("the accessible page failed:\n%s", report)
	}
	if vs := p.AxeViolations(); len(vs) != 0 {
		t.Errorf("AxeViolations() on the accessible page:\n%s", browsertest.FormatViolations(vs))
	}
}

func TestLabelLookupFailures(t *testing.T) {
	srv := startPortal(t)
	rec := &recorder{TB: t}
	p := browsertest.New(rec)
	p.Visit(srv.URL + "/aide")
	cases := []struct {
		name string
		f    func()
		want []string
	}{
		{"ambiguous", func() { p.ClickText("Modifier") }, []string{`2 links or buttons read "Modifier"`, `link "Modifier"`}},
		{"missing", func() { p.ClickText("Supprimer") }, []string{`no visible link or button reads "Supprimer"`, `link "← Retour"`, `link "Modifier"`}},
		{"no field", func() { p.Fill("Nom", "Dupont") }, []string{`no visible field is labelled "Nom"`}},
		{"not seen", func() { p.MustSee("Introuvable") }, []string{`"Introuvable" missing from`, "Écrivez à la mairie."}},
		{"seen", func() { p.MustNotSee("mairie") }, []string{`"mairie" present on`}},
	}
	for _, c := range cases {
		report := rec.catch(c.f)
		for _, w := range c.want {
			if !strings.Contains(report, w) {
				t.Errorf("%s: report lacks %q:\n%s", c.name, w, report)
			}
		}
	}
	// The arrow is hidden from screen readers but shown: a user sees it, so
	// ClickText wants the visible text.
	p.ClickText("← Retour")
	if !strings.HasSuffix(p.URL(), "/") || p.Title() != "Connexion – Portail des factures" {
		t.Errorf("after Retour: %s %q", p.URL(), p.Title())
	}
	p.Fill("Commune", "Démo")
	if report := rec.catch(func() { p.Fill("Commune", "Paris") }); !strings.Contains(report, `"Sistec-sur-Mer" (value "sistec")`) {
		t.Errorf("a missing option reported %q, want the options", report)
	}
	if report := rec.catch(func() { p.Fill("Se souvenir de moi", "oui") }); !strings.Contains(report, "use Check") {
		t.Errorf("Fill on a checkbox reported %q", report)
	}
}

func TestLocalhostSubdomain(t *testing.T) {
	srv := startPortal(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	p := browsertest.New(t)
	u := "http://demo.localhost:" + port + "/hote"
	timed(t, "Visit demo.localhost", func() { p.Visit(u) })
	p.MustSee("Hôte : demo.localhost:" + port)
	// Fetch resolves *.localhost the same way.
	status, body, _ := p.Fetch(u)
	if status != 200 || !strings.Contains(string(body), "Hôte : demo.localhost:"+port) {
		t.Errorf("Fetch(%s) = %d %q", u, status, body)
	}
}

func TestCookieReplay(t *testing.T) {
	srv := startPortal(t)
	alice := browsertest.New(t)
	alice.Visit(srv.URL + "/")
	alice.Fill("Adresse mail", "alice@example.fr")
	alice.Fill("Mot de passe", "s3cret")
	alice.ClickText("Se connecter")
	alice.MustSee("Bonjour alice@example.fr")

	// Another page has its own cookie jar...
	mallory := browsertest.New(t)
	mallory.Visit(srv.URL + "/tableau-de-bord")
	if mallory.Status() != 401 {
		t.Fatalf("a fresh page is signed in: status %d", mallory.Status())
	}
	if status, _, _ := mallory.Fetch(srv.URL + "/facture.pdf"); status != 403 {
		t.Errorf("Fetch without a session = %d, want 403", status)
	}
	// ...until the cookie is replayed.
	for _, c := range alice.Cookies() {
		mallory.SetCookie(c)
	}
	mallory.Visit(srv.URL + "/tableau-de-bord")
	mallory.MustSee("Bonjour alice@example.fr")
	got := mallory.Cookies()
	if len(got) != 1 || got[0].Domain != "127.0.0.1" || !got[0].HTTPOnly {
		t.Errorf("replayed cookies = %+v", got)
	}
}

func TestParallelPages(t *testing.T) {
	srv := startPortal(t)
	for i := range 3 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			p := browsertest.New(t)
			p.Visit(srv.URL + "/")
			p.Fill("Adresse mail", fmt.Sprintf("user%d@example.fr", i))
			p.Fill("Mot de passe", "s3cret")
			p.ClickText("Se connecter")
			p.MustSee(fmt.Sprintf("Bonjour user%d@example.fr", i))
		})
	}
}
