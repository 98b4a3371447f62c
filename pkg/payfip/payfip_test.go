package payfip

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

func validRequest() Request {
	return Request{
		NumCli: "004200", Exer: "2025", RefDet: "X9900301010000001317", Montant: 24311,
		Mel: "support@sistec.fr", Objet: "Facture 2017 020 002059", Saisie: "T",
		URLCl: "https://portail.example/payfip/classic", URLNotif: "https://portail.example/payfip/notif",
		URLRedirect: "https://portail.example/payfip/retour",
	}
}

func TestValidate(t *testing.T) {
	if err := validRequest().Validate(ModeWS, 0); err != nil {
		t.Fatalf("WS: %v", err)
	}
	classic := validRequest()
	classic.Saisie = "A"
	if err := classic.Validate(ModeClassic, DefaultClassicMaxMontant); err != nil {
		t.Fatalf("classic: %v", err)
	}
	cases := []struct {
		name  string
		mode  Mode
		max   int64
		edit  func(*Request)
		field string
	}{
		{"numcli 5 digits", ModeWS, 0, func(r *Request) { r.NumCli = "42000" }, "numcli"},
		{"numcli letters", ModeWS, 0, func(r *Request) { r.NumCli = "00420a" }, "numcli"},
		{"exer", ModeWS, 0, func(r *Request) { r.Exer = "25" }, "exer"},
		{"refdet short", ModeWS, 0, func(r *Request) { r.RefDet = "ABC12" }, "refdet"},
		{"refdet long", ModeWS, 0, func(r *Request) { r.RefDet = strings.Repeat("A", 31) }, "refdet"},
		{"refdet dash", ModeWS, 0, func(r *Request) { r.RefDet = "2017-020-002059" }, "refdet"},
		{"montant min", ModeWS, 0, func(r *Request) { r.Montant = 99 }, "montant"},
		{"montant max ws", ModeWS, 0, func(r *Request) { r.Montant = MaxMontant + 1 }, "montant"},
		{"montant tenant cap", ModeClassic, DefaultClassicMaxMontant, func(r *Request) { r.Saisie = "A"; r.Montant = 1_000_000 }, "montant"},
		{"mel no @", ModeWS, 0, func(r *Request) { r.Mel = "support.sistec.fr" }, "mel"},
		{"mel short", ModeWS, 0, func(r *Request) { r.Mel = "a@b.c" }, "mel"},
		{"mel long", ModeWS, 0, func(r *Request) { r.Mel = strings.Repeat("a", 75) + "@b.fr" + "x" }, "mel"},
		{"mel space", ModeWS, 0, func(r *Request) { r.Mel = "a b@sistec.fr" }, "mel"},
		{"objet accent", ModeWS, 0, func(r *Request) { r.Objet = "Facture é" }, "objet"},
		{"objet long", ModeWS, 0, func(r *Request) { r.Objet = strings.Repeat("a", 101) }, "objet"},
		{"saisie A in ws", ModeWS, 0, func(r *Request) { r.Saisie = "A" }, "saisie"},
		{"saisie W in classic", ModeClassic, 0, func(r *Request) { r.Saisie = "W" }, "saisie"},
		{"urlnotif", ModeWS, 0, func(r *Request) { r.URLNotif = "/payfip/notif" }, "urlnotif"},
		{"urlredirect", ModeWS, 0, func(r *Request) { r.URLRedirect = "" }, "urlredirect"},
		{"urlcl", ModeClassic, 0, func(r *Request) { r.Saisie = "T"; r.URLCl = "ftp://x/y" }, "urlcl"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := validRequest()
			c.edit(&r)
			err := r.Validate(c.mode, c.max)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("want a FieldError on %s, got %v", c.field, err)
			}
			if !strings.HasPrefix(err.Error(), "payfip: ") {
				t.Errorf("error not prefixed: %q", err)
			}
		})
	}
	// Bounds are inclusive.
	r := validRequest()
	r.Montant, r.Mel, r.RefDet = MinMontant, "a@b.cd", "ABC123"
	if err := r.Validate(ModeWS, 0); err != nil {
		t.Errorf("lower bounds: %v", err)
	}
	r.Montant, r.Mel, r.RefDet = MaxMontant, strings.Repeat("a", 75)+"@b.fr", strings.Repeat("Z", 30)
	if err := r.Validate(ModeWS, 0); err != nil {
		t.Errorf("upper bounds: %v", err)
	}
	// Several violations are all reported.
	err := Request{}.Validate(ModeWS, 0)
	for _, f := range []string{"numcli", "exer", "refdet", "montant", "mel", "saisie", "urlnotif", "urlredirect"} {
		if !strings.Contains(err.Error(), "invalid "+f) {
			t.Errorf("missing %s in %v", f, err)
		}
	}
}

func TestSanitizeObjet(t *testing.T) {
	cases := map[string]string{
		"":                                "",
		"Facture n° 2017-020-002059":      "Facture n 2017 020 002059",
		"Cantine de l'école – été":        "Cantine de l ecole ete",
		"Crèche   Œuvre  cœur ÇA ß":       "Creche OEuvre coeur CA ss",
		"  €€ Garderie ! ":                "Garderie",
		"L’accueil périscolaire":          "L accueil periscolaire",
		"Factures 2017-020-002059, 2017-": "Factures 2017 020 002059 2017",
	}
	for in, want := range cases {
		if got := SanitizeObjet(in); got != want {
			t.Errorf("SanitizeObjet(%q) = %q, want %q", in, got, want)
		}
	}
	long := SanitizeObjet(strings.Repeat("é", 150))
	if len(long) != 100 || !validObjet(long) {
		t.Errorf("long objet: %d %q", len(long), long)
	}
	cut := SanitizeObjet(strings.Repeat("a", 99) + " b")
	if cut != strings.Repeat("a", 99) {
		t.Errorf("trailing space kept: %q", cut)
	}
}

func TestNewRefDet(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		r := NewRefDet()
		if !ValidRefDet(r) {
			t.Fatalf("invalid refdet %q", r)
		}
		if seen[r] {
			t.Fatalf("duplicate refdet %q", r)
		}
		seen[r] = true
	}
}

func TestOutcomeAndPaidAt(t *testing.T) {
	want := map[string]Outcome{"P": OutcomePaid, "V": OutcomePaid, "R": OutcomeRefused, "Z": OutcomeRefused,
		"A": OutcomeCancelled, "": OutcomeError, "X": OutcomeError, "p": OutcomeError}
	for rt, o := range want {
		if got := (Result{ResultTrans: rt}).Outcome(); got != o {
			t.Errorf("Outcome(%q) = %s, want %s", rt, got, o)
		}
	}
	// Summer time: 14:05 in Paris is 12:05 UTC.
	at, err := Result{DatTrans: "14072025", HeurTrans: "1405"}.PaidAt()
	if err != nil {
		t.Fatal(err)
	}
	if !at.Equal(time.Date(2025, 7, 14, 12, 5, 0, 0, time.UTC)) {
		t.Errorf("PaidAt = %v", at)
	}
	at, _ = Result{DatTrans: "10012025", HeurTrans: "0000"}.PaidAt()
	if !at.Equal(time.Date(2025, 1, 9, 23, 0, 0, 0, time.UTC)) {
		t.Errorf("PaidAt winter = %v", at)
	}
	for _, bad := range [][2]string{{"", ""}, {"32012025", "1000"}, {"1401202", "1000"}, {"14012025", "2500"}, {"14012025", "1a00"}} {
		if _, err := (Result{DatTrans: bad[0], HeurTrans: bad[1]}).PaidAt(); err == nil {
			t.Errorf("PaidAt(%q) accepted", bad)
		}
	}
}

func TestParseMode(t *testing.T) {
	if m, err := ParseMode(" WS "); err != nil || m != ModeWS {
		t.Errorf("ParseMode ws: %v %v", m, err)
	}
	if m, err := ParseMode("classic"); err != nil || m != ModeClassic {
		t.Errorf("ParseMode classic: %v %v", m, err)
	}
	if _, err := ParseMode("tipi"); err == nil {
		t.Error("ParseMode accepted tipi")
	}
}

func TestClassicURL(t *testing.T) {
	r := validRequest()
	u, err := ClassicURL("https://www.payfip.gouv.fr/tpa/paiement.web", r)
	if err != nil {
		t.Fatal(err)
	}
	pu, _ := url.Parse(u)
	q := pu.Query()
	if pu.Host != "www.payfip.gouv.fr" || pu.Path != "/tpa/paiement.web" {
		t.Errorf("base lost: %s", u)
	}
	for k, v := range map[string]string{"numcli": "004200", "exer": "2025", "refdet": r.RefDet, "montant": "24311",
		"mel": r.Mel, "objet": r.Objet, "urlcl": r.URLCl, "saisie": "T"} {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	r.RefDet = "bad"
	if _, err := ClassicURL("https://www.payfip.gouv.fr/tpa/paiement.web", r); err == nil {
		t.Error("invalid request accepted")
	}
	if _, err := ClassicURL("not a url", validRequest()); err == nil {
		t.Error("invalid base accepted")
	}
}

func TestParseClassicCallback(t *testing.T) {
	v := url.Values{"NUMCLI": {"004200"}, "Exer": {"2025"}, "REFDET": {"ABC123DEF"}, "montant": {"24311"},
		"mel": {"a@b.fr"}, "saisie": {"T"}, "RESULTRANS": {"P"}, "numauto": {"123456"},
		"dattrans": {"14072025"}, "heurtrans": {"1405"}, "objet": {"Cantine"}}
	res, err := ParseClassicCallback(v)
	if err != nil {
		t.Fatal(err)
	}
	want := Result{ResultTrans: "P", NumAuto: "123456", DatTrans: "14072025", HeurTrans: "1405", NumCli: "004200",
		Exer: "2025", RefDet: "ABC123DEF", Montant: 24311, Mel: "a@b.fr", Objet: "Cantine", Saisie: "T"}
	if res != want {
		t.Errorf("got %+v\nwant %+v", res, want)
	}
	bad := []url.Values{
		{},
		{"numcli": {"004200"}, "refdet": {"ABC123DEF"}, "montant": {"1"}},                         // no resultrans
		{"numcli": {"4200"}, "refdet": {"ABC123DEF"}, "montant": {"1"}, "resultrans": {"P"}},      // numcli
		{"numcli": {"004200"}, "refdet": {"ABC"}, "montant": {"1"}, "resultrans": {"P"}},          // refdet
		{"numcli": {"004200"}, "refdet": {"ABC123DEF"}, "montant": {"1,5"}, "resultrans": {"P"}},  // montant
		{"numcli": {"004200"}, "refdet": {"ABC123DEF"}, "montant": {"-100"}, "resultrans": {"P"}}, // montant
		{"numcli": {"004200"}, "refdet": {"ABC123DEF"}, "REFDET": {"OTHER1234"}, "montant": {"1"}, "resultrans": {"P"}},
	}
	for i, b := range bad {
		if _, err := ParseClassicCallback(b); err == nil {
			t.Errorf("case %d accepted: %v", i, b)
		}
	}
	// The same value under two spellings is fine.
	v.Set("refdet", "ABC123DEF")
	if _, err := ParseClassicCallback(v); err != nil {
		t.Errorf("duplicate identical value refused: %v", err)
	}
}

func TestWSPaymentURL(t *testing.T) {
	if got := WSPaymentURL("https://www.payfip.gouv.fr/tpa/paiementws.web", "cc0cb210-1cd4-11ea-8cca-0213ad91a103"); got !=
		"https://www.payfip.gouv.fr/tpa/paiementws.web?idop=cc0cb210-1cd4-11ea-8cca-0213ad91a103" {
		t.Errorf("got %s", got)
	}
	if got := WSPaymentURL("http://x/p?a=1", "a b"); got != "http://x/p?a=1&idop=a+b" {
		t.Errorf("got %s", got)
	}
}

func TestParseNotification(t *testing.T) {
	const id = "cc0cb210-1cd4-11ea-8cca-0213ad91a103"
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/notif", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	for _, r := range []*http.Request{
		post("idOp=" + id), post("IDOP=" + id), post("idop=" + id),
		httptest.NewRequest(http.MethodGet, "/retour?idop="+id, nil),
	} {
		got, err := ParseNotification(r)
		if err != nil || got != id {
			t.Errorf("%s %s: %q %v", r.Method, r.URL, got, err)
		}
	}
	for _, r := range []*http.Request{
		post(""), post("idOp=<script>"), post("idOp=a&IDOP=b"), post("idOp=" + strings.Repeat("a", 65)),
	} {
		if got, err := ParseNotification(r); err == nil {
			t.Errorf("accepted %q", got)
		}
	}
}

const (
	respCreer     = `<?xml version='1.0' encoding='UTF-8'?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><ns2:creerPaiementSecuriseResponse xmlns:ns2="` + Namespace + `"><return><idOp>cc0cb210-1cd4-11ea-8cca-0213ad91a103</idOp></return></ns2:creerPaiementSecuriseResponse></S:Body></S:Envelope>`
	respDetail    = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><ns:recupererDetailPaiementSecuriseResponse xmlns:ns="` + Namespace + `"><return xmlns:r="urn:r"><r:dattrans>14072025</r:dattrans><r:exer>2025</r:exer><r:heurtrans>1405</r:heurtrans><r:idOp>cc0cb210</r:idOp><r:mel>a@b.fr</r:mel><r:montant>24311</r:montant><r:numauto>112233</r:numauto><r:numcli>004200</r:numcli><r:objet>Cantine</r:objet><r:refdet>ABC123DEF</r:refdet><r:resultrans>P</r:resultrans><r:saisie>T</r:saisie></return></ns:recupererDetailPaiementSecuriseResponse></soapenv:Body></soapenv:Envelope>`
	respFaultP1   = `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault xmlns:ns4="http://www.w3.org/2003/05/soap-envelope"><faultcode>S:Server</faultcode><faultstring>fr.gouv.finances.cp.tpa.webservice.exceptions.FonctionnelleErreur</faultstring><detail><ns2:FonctionnelleErreur xmlns:ns2="` + Namespace + `"><code>P1</code><descriptif></descriptif><libelle>IdOp incorrect.</libelle><severite>2</severite></ns2:FonctionnelleErreur></detail></S:Fault></S:Body></S:Envelope>`
	respFault999  = `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Server</faultcode><faultstring>fr.gouv.finances.cp.tpa.webservice.exceptions.TechDysfonctionnementErreur</faultstring><detail><ns2:TechDysfonctionnementErreur xmlns:ns2="` + Namespace + `"><code>999</code><descriptif>Erreur technique</descriptif><libelle>Erreur</libelle><severite>1</severite></ns2:TechDysfonctionnementErreur></detail></S:Fault></S:Body></S:Envelope>`
	respFaultBare = `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Server</faultcode><faultstring>fr.gouv.finances.cp.tpa.webservice.exceptions.TechIndisponibiliteErreur</faultstring></S:Fault></S:Body></S:Envelope>`
	respLatin1    = "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><S:Envelope xmlns:S=\"http://schemas.xmlsoap.org/soap/envelope/\"><S:Body><S:Fault><faultcode>S:Server</faultcode><faultstring>x.FonctionnelleErreur</faultstring><detail><FonctionnelleErreur><code>P5</code><libelle>R\xe9sultat non connu</libelle></FonctionnelleErreur></detail></S:Fault></S:Body></S:Envelope>"
)

func TestDecodeResponse(t *testing.T) {
	f, err := decodeResponse(200, []byte(respCreer))
	if err != nil || f["idop"] != "cc0cb210-1cd4-11ea-8cca-0213ad91a103" {
		t.Fatalf("creer: %v %v", f, err)
	}
	f, err = decodeResponse(200, []byte(respDetail))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resultFromFields(f)
	if err != nil || res.ResultTrans != "P" || res.Montant != 24311 || res.RefDet != "ABC123DEF" || res.NumAuto != "112233" {
		t.Fatalf("detail: %+v %v", res, err)
	}

	_, err = decodeResponse(500, []byte(respFaultP1))
	if !IsUnknown(err) || IsPending(err) || IsTechnical(err) {
		t.Fatalf("P1: %v", err)
	}
	fault, _ := asFault(err)
	if fault.Libelle != "IdOp incorrect." || fault.Severite != "2" || fault.FaultCode != "S:Server" {
		t.Errorf("P1 fields: %+v", fault)
	}
	if err.Error() != "payfip: SOAP fault FonctionnelleErreur P1: IdOp incorrect." {
		t.Errorf("P1 message: %q", err)
	}

	_, err = decodeResponse(500, []byte(respFault999))
	if fault, ok := asFault(err); !ok || fault.Kind != KindTechDysfonctionnement || fault.Code != "999" || !IsTechnical(err) {
		t.Fatalf("999: %v", err)
	}
	_, err = decodeResponse(500, []byte(respFaultBare))
	if fault, ok := asFault(err); !ok || fault.Kind != KindTechIndisponibilite || !IsTechnical(err) {
		t.Fatalf("bare: %v", err)
	}
	_, err = decodeResponse(500, []byte(respLatin1))
	if fault, ok := asFault(err); !ok || !IsPending(err) || fault.Libelle != "Résultat non connu" {
		t.Fatalf("latin1: %v", err)
	}

	for status, body := range map[int]string{
		502: "<html><body>Bad gateway</body></html>",
		200: "",
		500: "Internal Server Error",
		404: `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><x/></S:Body></S:Envelope>`,
	} {
		_, err := decodeResponse(status, []byte(body))
		if !errors.Is(err, ErrNotSOAP) || !IsTechnical(err) {
			t.Errorf("%d %q: %v", status, body, err)
		}
	}
	f, err = decodeResponse(200, []byte(`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><r><resultrans>A</resultrans></r></S:Body></S:Envelope>`))
	if err != nil || f["resultrans"] != "A" {
		t.Errorf("no <return>: %v %v", f, err)
	}
}

func TestEncodeRequest(t *testing.T) {
	b := string(encodeRequest("creerPaiementSecurise", [][2]string{{"mel", "a<b>&c@d.fr"}, {"idOp", "x"}}))
	for _, want := range []string{
		`xmlns:pai="` + Namespace + `"`, "<pai:creerPaiementSecurise><arg0>",
		"<mel>a&lt;b&gt;&amp;c@d.fr</mel><idOp>x</idOp></arg0>",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("missing %q in %s", want, b)
		}
	}
}

func TestNetworks(t *testing.T) {
	nets, err := ParseNetworks([]string{"192.0.2.0/24", " 198.51.100.7 ", "2001:db8::/32", "::ffff:203.0.113.0/120"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{
		"192.0.2.10": true, "192.0.3.1": false, "198.51.100.7": true, "198.51.100.8": false,
		"2001:db8::1": true, "2001:db9::1": false, "::ffff:192.0.2.10": true, "203.0.113.5": true,
		"127.0.0.1": false, "::1": false,
	} {
		if got := nets.Contains(netip.MustParseAddr(addr)); got != want {
			t.Errorf("Contains(%s) = %v, want %v", addr, got, want)
		}
	}
	if nets.Contains(netip.Addr{}) {
		t.Error("the zero address is in the networks")
	}
	var none Networks
	if none.Contains(netip.MustParseAddr("127.0.0.1")) {
		t.Error("an empty list trusts someone")
	}
	_, err = ParseNetworks([]string{"192.0.2.0/24", "payfip.gouv.fr", "10.0.0.0/33", ""})
	if err == nil || !strings.Contains(err.Error(), `[1] "payfip.gouv.fr"`) || !strings.Contains(err.Error(), "[2]") || !strings.Contains(err.Error(), "[3]") {
		t.Fatalf("bad entries: %v", err)
	}
}

func TestNonPublicNetworks(t *testing.T) {
	nets, err := ParseNetworks([]string{"192.0.2.0/24", "127.0.0.2", "10.1.0.0/16", "172.20.0.0/16", "192.168.1.7",
		"169.254.0.0/16", "100.64.0.1", "::1", "fd00::/8", "fe80::/64", "2001:db8::/32", "::ffff:10.0.0.1", "0.0.0.0/0", "198.51.100.7"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range nets.NonPublic() {
		got = append(got, p.String())
	}
	want := "127.0.0.2/32 10.1.0.0/16 172.20.0.0/16 192.168.1.7/32 169.254.0.0/16 100.64.0.1/32 ::1/128 fd00::/8 fe80::/64 10.0.0.1/32 0.0.0.0/0"
	if strings.Join(got, " ") != want {
		t.Fatalf("NonPublic = %v, want %s", got, want)
	}
}
