package payfip_test

import (
	"context"
	"errors"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/payfip"
	"portail/pkg/payfip/sim"
)

// These tests run the portal's side against the simulator over real HTTP:
// one httptest server is PayFiP, another plays the portal's urlcl, urlnotif
// and urlredirect, and a plain HTTP client plays the browser.

var paris = mustParis()

func mustParis() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		panic(err)
	}
	return l
}

// start is 14 March 2025, 10:00 in Paris.
var start = time.Date(2025, 3, 14, 10, 0, 0, 0, paris)

type env struct {
	sim    *sim.Simulator
	simURL string
	client *payfip.Client
	portal *portalStub
	// browser does not follow redirects: tests look at each 303.
	browser *http.Client
}

func newEnv(t *testing.T, opts sim.Options) *env {
	t.Helper()
	// A frozen base clock: time moves only through SetNow/Advance.
	frozen := start
	opts.Clock = func() time.Time { return frozen }
	s := sim.New(opts)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close) // runs first: ends hanging calls and pending notifications
	p := newPortalStub(t)
	return &env{
		sim:    s,
		simURL: srv.URL,
		client: payfip.NewClient(srv.URL+"/tpa/services/securite", &http.Client{Timeout: 2 * time.Second}),
		portal: p,
		browser: &http.Client{
			Timeout:       5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// call is one request the portal stub received.
type call struct {
	Browser bool // sent by the test's browser rather than by PayFiP
	Method  string
	Path    string
	Form    url.Values
}

type portalStub struct {
	srv   *httptest.Server
	calls chan call

	mu       sync.Mutex
	failures int // answer 500 to the next n notifications
}

func newPortalStub(t *testing.T) *portalStub {
	p := &portalStub{calls: make(chan call, 32)}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c := call{Browser: r.Header.Get("X-Test-Browser") != "", Method: r.Method, Path: r.URL.Path, Form: r.Form}
		p.mu.Lock()
		fail := p.failures > 0 && r.URL.Path == "/payfip/notif"
		if fail {
			p.failures--
		}
		p.mu.Unlock()
		p.calls <- c
		if fail {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *portalStub) url(path string) string { return p.srv.URL + path }

func (p *portalStub) next(t *testing.T) call {
	t.Helper()
	select {
	case c := <-p.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("the portal received nothing")
		return call{}
	}
}

func (p *portalStub) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case c := <-p.calls:
		t.Fatalf("unexpected call to the portal: %+v", c)
	case <-time.After(d):
	}
}

func (e *env) wsRequest() payfip.Request {
	return payfip.Request{
		NumCli: "004200", Exer: "2025", RefDet: payfip.NewRefDet(), Montant: 24311,
		Mel: "support@sistec.fr", Objet: payfip.SanitizeObjet("Facture 2017-020-002059 Restauration scolaire"),
		Saisie: "T", URLNotif: e.portal.url("/payfip/notif"), URLRedirect: e.portal.url("/payfip/retour"),
	}
}

func (e *env) create(t *testing.T) (payfip.Request, string) {
	t.Helper()
	r := e.wsRequest()
	if err := r.Validate(payfip.ModeWS, 0); err != nil {
		t.Fatal(err)
	}
	idOp, err := e.client.CreerPaiementSecurise(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return r, idOp
}

// page is a payment page as the browser sees it.
type page struct {
	status  int
	body    string
	action  string
	hidden  url.Values
	buttons map[string]string // label -> value
}

var (
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	buttonRE = regexp.MustCompile(`<button type="submit" name="choix" value="([^"]*)"[^>]*>([^<]*)</button>`)
)

func (e *env) get(t *testing.T, u string) page {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("X-Test-Browser", "1")
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := page{status: resp.StatusCode, body: string(b), hidden: url.Values{}, buttons: map[string]string{}}
	if m := formRE.FindStringSubmatch(p.body); m != nil {
		base, _ := url.Parse(u)
		a, _ := base.Parse(html.UnescapeString(m[1]))
		p.action = a.String()
	}
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		p.hidden.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	for _, m := range buttonRE.FindAllStringSubmatch(p.body, -1) {
		p.buttons[html.UnescapeString(m[2])] = m[1]
	}
	return p
}

// press submits the page's form with the button labelled label and returns
// the 303 target.
func (e *env) press(t *testing.T, p page, label string) string {
	t.Helper()
	v, ok := p.buttons[label]
	if !ok {
		t.Fatalf("no button %q on the page (have %v)", label, p.buttons)
	}
	form := url.Values{}
	for k, vs := range p.hidden {
		form[k] = vs
	}
	form.Set("choix", v)
	req, _ := http.NewRequest(http.MethodPost, p.action, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Test-Browser", "1")
	resp, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("press %q: status %d", label, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

func (e *env) control(t *testing.T, c sim.ControlOptions) {
	t.Helper()
	if err := e.sim.Control(c); err != nil {
		t.Fatal(err)
	}
}

func TestWSRoundTrip(t *testing.T) {
	e := newEnv(t, sim.Options{})
	ctx := context.Background()

	detail, err := e.client.RecupererDetailClient(ctx, "004200")
	if err != nil || detail.LibelleN2 != "COLLECTIVITE 004200" || detail.NumCli != "004200" {
		t.Fatalf("RecupererDetailClient: %+v %v", detail, err)
	}

	r, idOp := e.create(t)
	if len(idOp) != 36 {
		t.Errorf("idOp %q is not a UUID", idOp)
	}
	if _, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp); !payfip.IsPending(err) {
		t.Fatalf("before the page: want P5, got %v", err)
	}

	p := e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp))
	if p.status != http.StatusOK {
		t.Fatalf("payment page: %d %s", p.status, p.body)
	}
	for _, want := range []string{
		`<html lang="fr">`, "Bienvenue sur la solution de paiement de la DGFIP",
		"Attention il s&#39;agit d&#39;un paiement de test. Aucun paiement ne sera réellement effectué.",
		"Informations sur la dette", "Référence de la dette", r.RefDet, "Montant", "243,11 €",
		"Adresse électronique", "support@sistec.fr",
	} {
		if !strings.Contains(p.body, want) && !strings.Contains(p.body, strings.ReplaceAll(want, "&#39;", "'")) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, label := range []string{"Payer par carte bancaire", "Refuser le paiement", "Payer par prélèvement", "Refuser le prélèvement", "Annuler"} {
		if _, ok := p.buttons[label]; !ok {
			t.Errorf("page lacks button %q", label)
		}
	}
	if _, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp); !payfip.IsPending(err) {
		t.Fatalf("payer on the page: want P5, got %v", err)
	}

	loc := e.press(t, p, "Payer par carte bancaire")
	if loc != e.portal.url("/payfip/retour")+"?idop="+idOp {
		t.Fatalf("redirect to %q", loc)
	}
	ret := e.get(t, loc)
	if ret.status != http.StatusOK {
		t.Fatalf("portal return: %d", ret.status)
	}

	// The notification and the browser return race, as in real life.
	var gotNotif, gotReturn bool
	for !gotNotif || !gotReturn {
		c := e.portal.next(t)
		req := httptest.NewRequest(c.Method, c.Path+"?"+c.Form.Encode(), nil)
		if c.Method == http.MethodPost {
			req = httptest.NewRequest(c.Method, c.Path, strings.NewReader(c.Form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		got, err := payfip.ParseNotification(req)
		if err != nil || got != idOp {
			t.Fatalf("%s %s: idOp %q %v", c.Method, c.Path, got, err)
		}
		switch {
		case c.Path == "/payfip/notif" && c.Method == http.MethodPost && !c.Browser:
			gotNotif = true
		case c.Path == "/payfip/retour" && c.Browser:
			gotReturn = true
		default:
			t.Fatalf("unexpected call %+v", c)
		}
	}

	res, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp)
	if err != nil {
		t.Fatal(err)
	}
	if res.ResultTrans != "P" || res.Outcome() != payfip.OutcomePaid || res.RefDet != r.RefDet ||
		res.Montant != 24311 || res.NumCli != "004200" || res.IdOp != idOp || res.Mel != r.Mel ||
		res.Objet != "Facture 2017 020 002059 Restauration scolaire" || res.Saisie != "T" || res.Exer != "2025" ||
		len(res.NumAuto) != 6 {
		t.Fatalf("result: %+v", res)
	}
	at, err := res.PaidAt()
	if err != nil || !at.Equal(start) {
		t.Errorf("PaidAt = %v %v, want %v", at, err, start)
	}

	// The idOp cannot be used again.
	again := e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp))
	if again.status != http.StatusBadRequest || !strings.Contains(again.body, "déjà été utilisée") {
		t.Errorf("reused idOp: %d %s", again.status, again.body)
	}
	// Nor can the form be submitted twice.
	form := url.Values{"idop": {idOp}, "choix": {"R"}}
	resp, err := http.PostForm(e.simURL+"/tpa/paiementws.web", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("second submission: %d", resp.StatusCode)
	}
	// The result stays readable long after (and is not purged).
	e.sim.Advance(72 * time.Hour)
	if res2, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp); err != nil || res2 != res {
		t.Errorf("later: %+v %v", res2, err)
	}
}

func TestWSOutcomes(t *testing.T) {
	cases := []struct {
		label, resultrans string
		outcome           payfip.Outcome
		numauto           bool
	}{
		{"Payer par carte bancaire", "P", payfip.OutcomePaid, true},
		{"Payer par prélèvement", "V", payfip.OutcomePaid, true},
		{"Refuser le paiement", "R", payfip.OutcomeRefused, false},
		{"Refuser le prélèvement", "Z", payfip.OutcomeRefused, false},
		{"Annuler", "A", payfip.OutcomeCancelled, false},
	}
	e := newEnv(t, sim.Options{})
	for _, c := range cases {
		t.Run(c.resultrans, func(t *testing.T) {
			_, idOp := e.create(t)
			p := e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp))
			e.press(t, p, c.label)
			if n := e.portal.next(t); n.Form.Get("idOp") != idOp {
				t.Fatalf("notification %+v", n)
			}
			res, err := e.client.RecupererDetailPaiementSecurise(context.Background(), idOp)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResultTrans != c.resultrans || res.Outcome() != c.outcome || (res.NumAuto != "") != c.numauto {
				t.Errorf("got %+v", res)
			}
		})
	}
}

func TestWSForcedOutcome(t *testing.T) {
	e := newEnv(t, sim.Options{})
	// Through the JSON endpoint, as a browser test would.
	resp, err := http.Post(e.simURL+"/_sim/control", "application/json", strings.NewReader(`{"force_outcome":"R"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("control: %d", resp.StatusCode)
	}
	for _, want := range []string{"R", "P"} { // forced once, then the button decides again
		_, idOp := e.create(t)
		e.press(t, e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp)), "Payer par carte bancaire")
		e.portal.next(t)
		res, err := e.client.RecupererDetailPaiementSecurise(context.Background(), idOp)
		if err != nil || res.ResultTrans != want {
			t.Fatalf("want %s, got %+v %v", want, res, err)
		}
	}
}

func TestWSExpiredAndPurged(t *testing.T) {
	e := newEnv(t, sim.Options{})
	ctx := context.Background()

	_, expired := e.create(t)
	_, opened := e.create(t)
	e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", opened)) // page opened, never finished

	e.sim.Advance(15*time.Minute + time.Second)
	p := e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", expired))
	if p.status != http.StatusBadRequest || !strings.Contains(p.body, "expiré") {
		t.Fatalf("expired idOp: %d %s", p.status, p.body)
	}
	// Until the nightly purge, an expired idOp still answers P5.
	for _, id := range []string{expired, opened} {
		if _, err := e.client.RecupererDetailPaiementSecurise(ctx, id); !payfip.IsPending(err) {
			t.Fatalf("before midnight: want P5, got %v", err)
		}
	}
	e.sim.SetNow(time.Date(2025, 3, 14, 23, 59, 0, 0, paris))
	if _, err := e.client.RecupererDetailPaiementSecurise(ctx, expired); !payfip.IsPending(err) {
		t.Fatalf("23:59: want P5, got %v", err)
	}
	e.sim.Advance(time.Minute)
	for _, id := range []string{expired, opened} {
		_, err := e.client.RecupererDetailPaiementSecurise(ctx, id)
		if !payfip.IsUnknown(err) || payfip.IsTechnical(err) {
			t.Fatalf("after midnight: want P1, got %v", err)
		}
	}
	// Purged idOps cannot be opened either.
	if p := e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", expired)); p.status != http.StatusBadRequest {
		t.Errorf("purged page: %d", p.status)
	}
	// A never-issued idOp is P1 too.
	if _, err := e.client.RecupererDetailPaiementSecurise(ctx, "00000000-0000-4000-8000-000000000000"); !payfip.IsUnknown(err) {
		t.Errorf("unknown idOp: %v", err)
	}
}

func TestWSNotifications(t *testing.T) {
	e := newEnv(t, sim.Options{})
	ctx := context.Background()

	t.Run("dropped", func(t *testing.T) {
		e.control(t, sim.ControlOptions{DropNotifications: true})
		_, idOp := e.create(t)
		e.press(t, e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp)), "Payer par carte bancaire")
		e.portal.none(t, 200*time.Millisecond)
		// Reconciliation still finds the truth.
		if res, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp); err != nil || res.Outcome() != payfip.OutcomePaid {
			t.Fatalf("%+v %v", res, err)
		}
		info, _ := e.sim.Payment(idOp)
		if len(info.Deliveries) != 1 || !info.Deliveries[0].Dropped {
			t.Errorf("deliveries: %+v", info.Deliveries)
		}
	})

	t.Run("retried", func(t *testing.T) {
		e.control(t, sim.ControlOptions{NotifyRetries: 2, NotifyRetryDelayMS: 10})
		e.portal.mu.Lock()
		e.portal.failures = 1
		e.portal.mu.Unlock()
		_, idOp := e.create(t)
		e.press(t, e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp)), "Payer par carte bancaire")
		for range 2 {
			if c := e.portal.next(t); c.Form.Get("idOp") != idOp {
				t.Fatalf("%+v", c)
			}
		}
		e.portal.none(t, 100*time.Millisecond)
		info, _ := e.sim.Payment(idOp)
		if len(info.Deliveries) != 2 || info.Deliveries[0].Status != 500 || info.Deliveries[1].Status != 200 {
			t.Errorf("deliveries: %+v", info.Deliveries)
		}
	})

	t.Run("delayed", func(t *testing.T) {
		e.control(t, sim.ControlOptions{NotifyDelayMS: 300})
		_, idOp := e.create(t)
		pressed := time.Now()
		e.press(t, e.get(t, payfip.WSPaymentURL(e.simURL+"/tpa/paiementws.web", idOp)), "Annuler")
		if c := e.portal.next(t); c.Form.Get("idOp") != idOp {
			t.Fatalf("%+v", c)
		}
		if d := time.Since(pressed); d < 300*time.Millisecond {
			t.Errorf("notification after %v, want ≥ 300ms", d)
		}
	})
}

func TestWSFaults(t *testing.T) {
	e := newEnv(t, sim.Options{Hang: 10 * time.Second})
	ctx := context.Background()
	_, idOp := e.create(t)

	t.Run("999", func(t *testing.T) {
		e.control(t, sim.ControlOptions{Fault: sim.Fault999, FaultCount: 2})
		for range 2 {
			_, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp)
			var f *payfip.Fault
			if !errors.As(err, &f) || f.Kind != payfip.KindTechDysfonctionnement || f.Code != "999" || !payfip.IsTechnical(err) {
				t.Fatalf("want fault 999, got %v", err)
			}
		}
		if _, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp); !payfip.IsPending(err) {
			t.Fatalf("after the faults: %v", err)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		e.control(t, sim.ControlOptions{Fault: sim.FaultTimeout})
		client := payfip.NewClient(e.simURL+"/tpa/services/securite", &http.Client{Timeout: 200 * time.Millisecond})
		began := time.Now()
		_, err := client.CreerPaiementSecurise(ctx, e.wsRequest())
		if !errors.Is(err, payfip.ErrTimeout) || !payfip.IsTechnical(err) {
			t.Fatalf("want a timeout, got %v", err)
		}
		if time.Since(began) > 2*time.Second {
			t.Errorf("timeout took %v", time.Since(began))
		}
		// Context deadlines count as timeouts too.
		e.control(t, sim.ControlOptions{Fault: sim.FaultTimeout})
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := e.client.RecupererDetailClient(cctx, "004200"); !errors.Is(err, payfip.ErrTimeout) {
			t.Fatalf("context deadline: %v", err)
		}
	})

	t.Run("unavailable", func(t *testing.T) {
		e.control(t, sim.ControlOptions{Fault: sim.FaultIndisponible})
		_, err := e.client.RecupererDetailClient(ctx, "004200")
		var f *payfip.Fault
		if !errors.As(err, &f) || f.Kind != payfip.KindTechIndisponibilite || !payfip.IsTechnical(err) {
			t.Fatalf("%v", err)
		}
	})

	t.Run("not SOAP", func(t *testing.T) {
		e.control(t, sim.ControlOptions{Fault: sim.FaultHTML})
		_, err := e.client.RecupererDetailPaiementSecurise(ctx, idOp)
		if !errors.Is(err, payfip.ErrNotSOAP) || !payfip.IsTechnical(err) || !strings.Contains(err.Error(), "502") {
			t.Fatalf("%v", err)
		}
	})

	t.Run("unreachable", func(t *testing.T) {
		c := payfip.NewClient("http://127.0.0.1:1/tpa/services/securite", nil)
		_, err := c.RecupererDetailClient(ctx, "004200")
		if !errors.Is(err, payfip.ErrTransport) || !payfip.IsTechnical(err) {
			t.Fatalf("%v", err)
		}
	})
}

func TestWSValidationFaults(t *testing.T) {
	e := newEnv(t, sim.Options{})
	ctx := context.Background()
	cases := []struct {
		name string
		edit func(*payfip.Request)
		code string
	}{
		{"refdet", func(r *payfip.Request) { r.RefDet = "2017-020-002059" }, payfip.CodeInvalidRefDet},
		{"refdet short", func(r *payfip.Request) { r.RefDet = "AB12" }, payfip.CodeInvalidRefDet},
		{"mel", func(r *payfip.Request) { r.Mel = "pas-une-adresse" }, payfip.CodeInvalidMel},
		{"numcli", func(r *payfip.Request) { r.NumCli = "4200" }, "C1"},
		{"montant min", func(r *payfip.Request) { r.Montant = 99 }, "M2"},
		{"montant max", func(r *payfip.Request) { r.Montant = payfip.MaxMontant + 1 }, "M3"},
		{"saisie", func(r *payfip.Request) { r.Saisie = "A" }, "S1"},
		{"objet", func(r *payfip.Request) { r.Objet = "Facture n°1" }, "O1"},
		{"urlnotif", func(r *payfip.Request) { r.URLNotif = "notif" }, "U2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.wsRequest()
			c.edit(&r)
			if r.Validate(payfip.ModeWS, 0) == nil {
				t.Error("the portal's Validate let it through")
			}
			_, err := e.client.CreerPaiementSecurise(ctx, r)
			var f *payfip.Fault
			if !errors.As(err, &f) || f.Kind != payfip.KindFonctionnelle || f.Code != c.code || payfip.IsTechnical(err) {
				t.Fatalf("want FonctionnelleErreur %s, got %v", c.code, err)
			}
			if f.Libelle == "" {
				t.Error("fault without libelle")
			}
		})
	}
	if len(e.sim.Payments()) != 0 {
		t.Error("invalid requests created payments")
	}
}

func TestClassicRoundTrip(t *testing.T) {
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		t.Run(method, func(t *testing.T) {
			e := newEnv(t, sim.Options{})
			e.control(t, sim.ControlOptions{ClassicCallbackMethod: method})
			r := e.wsRequest()
			r.URLCl = e.portal.url("/payfip/classic?tenant=sistec")
			r.Saisie = "T"
			if err := r.Validate(payfip.ModeClassic, payfip.DefaultClassicMaxMontant); err != nil {
				t.Fatal(err)
			}
			u, err := payfip.ClassicURL(e.simURL+"/tpa/paiement.web", r)
			if err != nil {
				t.Fatal(err)
			}
			p := e.get(t, u)
			if p.status != http.StatusOK || !strings.Contains(p.body, "243,11 €") || !strings.Contains(p.body, r.RefDet) ||
				!strings.Contains(p.body, "Bienvenue sur la solution de paiement de la DGFIP") {
				t.Fatalf("classic page: %d %s", p.status, p.body)
			}
			if _, ok := p.buttons["Refuser le prélèvement"]; ok {
				t.Error("classic page offers Z")
			}
			loc := e.press(t, p, "Payer par carte bancaire")

			// PayFiP called urlcl server-side before sending the browser back.
			server := e.portal.next(t)
			if server.Browser || server.Method != method || server.Path != "/payfip/classic" || server.Form.Get("tenant") != "sistec" {
				t.Fatalf("server-side callback: %+v", server)
			}
			res, err := payfip.ParseClassicCallback(server.Form)
			if err != nil {
				t.Fatal(err)
			}
			if res.ResultTrans != "P" || res.RefDet != r.RefDet || res.Montant != 24311 || res.NumCli != "004200" ||
				res.Mel != r.Mel || res.Objet != r.Objet || res.Saisie != "T" || len(res.NumAuto) != 6 {
				t.Fatalf("callback: %+v", res)
			}
			if at, err := res.PaidAt(); err != nil || !at.Equal(start) {
				t.Errorf("PaidAt %v %v", at, err)
			}

			// The browser comes back to urlcl with the same parameters.
			lu, _ := url.Parse(loc)
			if lu.Path != "/payfip/classic" {
				t.Fatalf("browser sent to %s", loc)
			}
			e.get(t, loc)
			browser := e.portal.next(t)
			if !browser.Browser {
				t.Fatalf("want the browser's return, got %+v", browser)
			}
			res2, err := payfip.ParseClassicCallback(browser.Form)
			if err != nil || res2 != res {
				t.Fatalf("browser return: %+v %v", res2, err)
			}
			if info := e.sim.Payments(); len(info) != 1 || info[0].State != sim.StateDone || info[0].Mode != payfip.ModeClassic {
				t.Errorf("payments: %+v", info)
			}
		})
	}
}

func TestClassicCancelAndReplay(t *testing.T) {
	e := newEnv(t, sim.Options{})
	r := e.wsRequest()
	r.URLCl = e.portal.url("/payfip/classic")
	r.Saisie = "A" // production: no test banner
	u, err := payfip.ClassicURL(e.simURL+"/tpa/paiement.web", r)
	if err != nil {
		t.Fatal(err)
	}
	p := e.get(t, u)
	if strings.Contains(p.body, "paiement de test") {
		t.Error("test banner shown with saisie=A")
	}
	e.press(t, p, "Annuler")
	res, err := payfip.ParseClassicCallback(e.portal.next(t).Form)
	if err != nil || res.ResultTrans != "A" || res.Outcome() != payfip.OutcomeCancelled || res.NumAuto != "" {
		t.Fatalf("%+v %v", res, err)
	}
	// The same form cannot be submitted twice.
	form := url.Values{}
	for k, v := range p.hidden {
		form[k] = v
	}
	form.Set("choix", "P")
	resp, err := http.PostForm(p.action, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replay: %d", resp.StatusCode)
	}
}

func TestClassicValidation(t *testing.T) {
	e := newEnv(t, sim.Options{})
	good := url.Values{
		"numcli": {"004200"}, "exer": {"2025"}, "refdet": {"ABC123DEF"}, "montant": {"24311"},
		"mel": {"a@b.fr"}, "saisie": {"T"}, "urlcl": {e.portal.url("/payfip/classic")},
	}
	if p := e.get(t, e.simURL+"/tpa/paiement.web?"+good.Encode()); p.status != http.StatusOK {
		t.Fatalf("good request refused: %s", p.body)
	}
	// Upper-case names, as some clients send them.
	upper := url.Values{}
	for k, v := range good {
		upper[strings.ToUpper(k)] = v
	}
	if p := e.get(t, e.simURL+"/tpa/paiement.web?"+upper.Encode()); p.status != http.StatusOK {
		t.Fatalf("upper-case names refused: %s", p.body)
	}
	cases := map[string][2]string{
		"numcli":       {"numcli", "4200"},
		"exer":         {"exer", "25"},
		"refdet":       {"refdet", "2017-020"},
		"montant":      {"montant", "243,11"},
		"montant min":  {"montant", "99"},
		"montant max":  {"montant", "1000000"}, // 10 000 € > the classic cap
		"mel":          {"mel", "ab.fr"},
		"objet":        {"objet", "Facture n°1"},
		"saisie":       {"saisie", "W"},
		"urlcl":        {"urlcl", "/relative"},
		"urlcl absent": {"urlcl", ""},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			v := url.Values{}
			for k, x := range good {
				v[k] = x
			}
			v.Set(c[0], c[1])
			p := e.get(t, e.simURL+"/tpa/paiement.web?"+v.Encode())
			if p.status != http.StatusBadRequest || !strings.Contains(p.body, "Paiement impossible") ||
				!strings.Contains(p.body, strings.ToUpper(c[0])) || !strings.Contains(p.body, `lang="fr"`) {
				t.Fatalf("%d %s", p.status, p.body)
			}
			if len(p.buttons) != 0 {
				t.Error("error page offers payment buttons")
			}
		})
	}
	e.portal.none(t, 50*time.Millisecond)
}
