package sim_test

import (
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"portail/pkg/payfip"
	"portail/pkg/payfip/sim"
)

// The round trips with the portal's client live in package payfip; these
// tests cover the simulator's own surface: control endpoint, clock, WSDL,
// SOAP protocol errors, and the structure of its pages.

func newSim(t *testing.T) (*sim.Simulator, *httptest.Server) {
	t.Helper()
	s := sim.New(sim.Options{})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	t.Cleanup(s.Close)
	return s, srv
}

func do(t *testing.T, method, u, contentType, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestControlEndpoint(t *testing.T) {
	s, srv := newSim(t)
	status, body := do(t, "GET", srv.URL+"/_sim/control", "", "")
	var c sim.ControlOptions
	if status != 200 || json.Unmarshal([]byte(body), &c) != nil || c != sim.DefaultControl() {
		t.Fatalf("initial control: %d %s", status, body)
	}
	status, body = do(t, "POST", srv.URL+"/_sim/control", "application/json",
		`{"force_outcome":"z","notify_delay_ms":50,"drop_notifications":true,"fault":"999"}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	got := s.ControlState()
	want := sim.ControlOptions{ForceOutcome: "Z", NotifyDelayMS: 50, DropNotifications: true, Fault: "999", FaultCount: 1,
		NotifyRetries: 2, NotifyRetryDelayMS: 500, ClassicCallbackMethod: "GET"}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// Partial update keeps the other fields.
	do(t, "POST", srv.URL+"/_sim/control", "application/json", `{"fault":"timeout","fault_count":3}`)
	if got := s.ControlState(); got.ForceOutcome != "Z" || got.Fault != "timeout" || got.FaultCount != 3 || !got.DropNotifications {
		t.Fatalf("partial update: %+v", got)
	}
	for _, bad := range []string{`{"force_outcome":"Q"}`, `{"fault":"boom"}`, `{"nope":1}`, `{"notify_delay_ms":-1}`, `not json`,
		`{"classic_callback_method":"PUT"}`} {
		if status, _ := do(t, "POST", srv.URL+"/_sim/control", "application/json", bad); status != 400 {
			t.Errorf("%s: status %d", bad, status)
		}
	}
	if err := s.Control(sim.ControlOptions{Fault: "boom"}); err == nil || !strings.HasPrefix(err.Error(), "payfip sim: ") {
		t.Errorf("Control accepted a bad fault: %v", err)
	}

	status, _ = do(t, "POST", srv.URL+"/_sim/reset", "", "")
	if status != 200 || s.ControlState() != sim.DefaultControl() {
		t.Errorf("reset: %d %+v", status, s.ControlState())
	}
}

func TestClockEndpoint(t *testing.T) {
	s, srv := newSim(t)
	status, body := do(t, "POST", srv.URL+"/_sim/clock", "application/json", `{"now":"2025-03-14T23:50:00+01:00","advance":"16m"}`)
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	want := time.Date(2025, 3, 15, 0, 6, 0, 0, time.FixedZone("", 3600))
	if d := s.Now().Sub(want); d < 0 || d > time.Minute {
		t.Errorf("now = %v, want ≈ %v", s.Now(), want)
	}
	if status, _ := do(t, "POST", srv.URL+"/_sim/clock", "application/json", `{"advance":"soon"}`); status != 400 {
		t.Errorf("bad duration: %d", status)
	}
	s.Reset()
	if d := time.Since(s.Now()); d < -time.Second || d > time.Second {
		t.Errorf("reset clock: %v", s.Now())
	}
}

func TestMovableClock(t *testing.T) {
	base := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	s := sim.New(sim.Options{Clock: func() time.Time { return base }})
	defer s.Close()
	if !s.Now().Equal(base) {
		t.Fatal(s.Now())
	}
	s.Advance(90 * time.Minute)
	if !s.Now().Equal(base.Add(90 * time.Minute)) {
		t.Fatal(s.Now())
	}
	at := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	s.SetNow(at)
	if !s.Now().Equal(at) {
		t.Fatal(s.Now())
	}
}

func soapCall(t *testing.T, srv *httptest.Server, inner string) (int, string) {
	t.Helper()
	env := `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:pai="` +
		payfip.Namespace + `"><soapenv:Body>` + inner + `</soapenv:Body></soapenv:Envelope>`
	return do(t, "POST", srv.URL+"/tpa/services/securite", "text/xml; charset=utf-8", env)
}

func TestSOAPProtocol(t *testing.T) {
	s, srv := newSim(t)
	creer := `<pai:creerPaiementSecurise><arg0><exer>2025</exer><mel>a@b.fr</mel><montant>100</montant><numcli>004200</numcli>` +
		`<refdet>ABC123DEF</refdet><saisie>T</saisie><urlnotif>http://p/n</urlnotif><urlredirect>http://p/r</urlredirect></arg0></pai:creerPaiementSecurise>`
	status, body := soapCall(t, srv, creer)
	m := regexp.MustCompile(`<return><idOp>([0-9a-f-]{36})</idOp></return>`).FindStringSubmatch(body)
	if status != 200 || m == nil {
		t.Fatalf("creer: %d %s", status, body)
	}
	idOp := m[1]
	if ps := s.Payments(); len(ps) != 1 || ps[0].ID != idOp || ps[0].State != sim.StateCreated || ps[0].Montant != 100 {
		t.Fatalf("payments: %+v", ps)
	}

	// SOAP names are case-sensitive: idop is not idOp.
	status, body = soapCall(t, srv, `<pai:recupererDetailPaiementSecurise><arg0><idop>`+idOp+`</idop></arg0></pai:recupererDetailPaiementSecurise>`)
	if status != 500 || !strings.Contains(body, "<code>P1</code>") {
		t.Errorf("lower-case idop: %d %s", status, body)
	}
	status, body = soapCall(t, srv, `<pai:recupererDetailPaiementSecurise><arg0><idOp>`+idOp+`</idOp></arg0></pai:recupererDetailPaiementSecurise>`)
	if status != 500 || !strings.Contains(body, "<code>P5</code>") ||
		!strings.Contains(body, "<faultstring>fr.gouv.finances.cp.tpa.webservice.exceptions.FonctionnelleErreur</faultstring>") {
		t.Errorf("P5: %d %s", status, body)
	}
	var env struct{ XMLName xml.Name }
	if xml.Unmarshal([]byte(body), &env) != nil || env.XMLName.Space != payfip.SOAPEnvNamespace {
		t.Errorf("fault is not a SOAP envelope: %s", body)
	}

	for name, inner := range map[string]string{
		"wrong namespace": `<x:creerPaiementSecurise xmlns:x="urn:other"><arg0/></x:creerPaiementSecurise>`,
		"unknown op":      `<pai:annulerPaiement><arg0/></pai:annulerPaiement>`,
	} {
		status, body := soapCall(t, srv, inner)
		if status != 500 || !strings.Contains(body, "<faultcode>S:Client</faultcode>") || !strings.Contains(body, "Cannot find dispatch method") {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	status, body = do(t, "POST", srv.URL+"/tpa/services/securite", "text/xml", "<not-xml")
	if status != 500 || !strings.Contains(body, "S:Client") {
		t.Errorf("malformed: %d %s", status, body)
	}
	status, body = soapCall(t, srv, `<pai:recupererDetailClient><arg0><numCli>12</numCli></arg0></pai:recupererDetailClient>`)
	if status != 500 || !strings.Contains(body, "FonctionnelleErreur") {
		t.Errorf("bad numCli: %d %s", status, body)
	}
}

func TestWSDL(t *testing.T) {
	_, srv := newSim(t)
	status, body := do(t, "GET", srv.URL+"/tpa/services/securite?wsdl", "", "")
	var defs struct {
		XMLName         xml.Name
		TargetNamespace string `xml:"targetNamespace,attr"`
	}
	if status != 200 || xml.Unmarshal([]byte(body), &defs) != nil || defs.XMLName.Local != "definitions" ||
		defs.TargetNamespace != payfip.Namespace {
		t.Fatalf("wsdl: %d %s", status, body)
	}
	for _, want := range []string{`location="` + srv.URL + `/tpa/services/securite"`, `name="creerPaiementSecurise"`,
		`name="recupererDetailPaiementSecurise"`, `name="recupererDetailClient"`} {
		if !strings.Contains(body, want) {
			t.Errorf("wsdl lacks %s", want)
		}
	}
	if status, _ := do(t, "GET", srv.URL+"/tpa/services/securite", "", ""); status != 405 {
		t.Errorf("GET without ?wsdl: %d", status)
	}
}

// TestPagesStructure checks, without a browser, what axe-core would: every
// page is French, titled, has one h1 inside <main>, labelled buttons, no
// script. The browser test runs axe-core itself.
func TestPagesStructure(t *testing.T) {
	s, srv := newSim(t)
	classic := url.Values{"numcli": {"004200"}, "exer": {"2025"}, "refdet": {"ABC123DEF"}, "montant": {"24311"},
		"mel": {"a@b.fr"}, "saisie": {"T"}, "urlcl": {"http://portail.example/cl"}, "objet": {"Cantine"}}
	status, body := soapCall(t, srv, `<pai:creerPaiementSecurise><arg0><exer>2025</exer><mel>a@b.fr</mel><montant>100</montant>`+
		`<numcli>004200</numcli><refdet>ABC123DEF</refdet><saisie>W</saisie><urlnotif>http://p/n</urlnotif>`+
		`<urlredirect>http://p/r</urlredirect></arg0></pai:creerPaiementSecurise>`)
	if status != 200 {
		t.Fatal(body)
	}
	idOp := s.Payments()[0].ID

	pages := map[string]struct {
		url    string
		status int
	}{
		"index":         {"/", 200},
		"not found":     {"/nulle-part", 404},
		"classic":       {"/tpa/paiement.web?" + classic.Encode(), 200},
		"classic error": {"/tpa/paiement.web?numcli=1", 400},
		"ws":            {"/tpa/paiementws.web?idop=" + idOp, 200},
		"ws reused":     {"/tpa/paiementws.web?idop=" + idOp, 400},
		"ws unknown":    {"/tpa/paiementws.web?idop=nope", 400},
		"wsdl page":     {"/tpa/services/securite", 405},
	}
	// Map order is random; the WS page must be opened before it is reused.
	for _, name := range []string{"index", "not found", "classic", "classic error", "ws", "ws reused", "ws unknown", "wsdl page"} {
		p := pages[name]
		t.Run(name, func(t *testing.T) {
			status, body := do(t, "GET", srv.URL+p.url, "", "")
			if status != p.status {
				t.Fatalf("status %d, want %d: %s", status, p.status, body)
			}
			checks := map[string]bool{
				`<html lang="fr">`:           strings.Contains(body, `<html lang="fr">`),
				"a non-empty title":          regexp.MustCompile(`<title>[^<]+</title>`).MatchString(body),
				"one h1":                     strings.Count(body, "<h1>") == 1,
				"h1 inside main":             strings.Index(body, "<main>") < strings.Index(body, "<h1>") && strings.Index(body, "<h1>") < strings.Index(body, "</main>"),
				"header and footer":          strings.Contains(body, "<header>") && strings.Contains(body, "<footer>"),
				"no script":                  !strings.Contains(body, "<script"),
				"no empty button":            !regexp.MustCompile(`<button[^>]*>\s*</button>`).MatchString(body),
				"charset":                    strings.Contains(body, `<meta charset="utf-8">`),
				"h2 only after h1 (no skip)": !strings.Contains(body, "<h3"),
			}
			for what, ok := range checks {
				if !ok {
					t.Errorf("page lacks %s", what)
				}
			}
		})
	}
	_, body = do(t, "GET", srv.URL+"/tpa/paiement.web?"+classic.Encode(), "", "")
	if strings.Contains(body, "Refuser le prélèvement") || !strings.Contains(body, "Objet") || !strings.Contains(body, "paiement de test") {
		t.Errorf("classic page content: %s", body)
	}
}

func TestPaymentsEndpoint(t *testing.T) {
	s, srv := newSim(t)
	q := url.Values{"numcli": {"004200"}, "exer": {"2025"}, "refdet": {"ABC123DEF"}, "montant": {"24311"},
		"mel": {"a@b.fr"}, "saisie": {"T"}, "urlcl": {"http://127.0.0.1:1/cl"}}
	do(t, "GET", srv.URL+"/tpa/paiement.web?"+q.Encode(), "", "")
	status, body := do(t, "GET", srv.URL+"/_sim/payments", "", "")
	var ps []sim.PaymentInfo
	if status != 200 || json.Unmarshal([]byte(body), &ps) != nil || len(ps) != 1 || ps[0].RefDet != "ABC123DEF" ||
		ps[0].State != sim.StateInProgress || ps[0].Mode != payfip.ModeClassic {
		t.Fatalf("%d %s", status, body)
	}
	// The portal is unreachable: the browser is still sent back, and the
	// failed server-side call is recorded.
	s.Control(sim.ControlOptions{NotifyRetries: 0})
	status, _ = do(t, "POST", srv.URL+"/tpa/paiement.web", "application/x-www-form-urlencoded",
		url.Values{"session": {ps[0].ID}, "choix": {"V"}}.Encode())
	if status != http.StatusSeeOther {
		t.Fatalf("submit: %d", status)
	}
	p, _ := s.Payment(ps[0].ID)
	if p.State != sim.StateDone || p.ResultTrans != "V" || len(p.Deliveries) != 1 || p.Deliveries[0].Error == "" {
		t.Errorf("payment: %+v", p)
	}
	do(t, "POST", srv.URL+"/_sim/reset", "", "")
	if len(s.Payments()) != 0 {
		t.Error("reset kept payments")
	}
}
