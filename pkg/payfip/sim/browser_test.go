package sim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"portail/pkg/browsertest"
	"portail/pkg/payfip"
	"portail/pkg/payfip/sim"
)

func TestMain(m *testing.M) { browsertest.Main(m) }

// portalPage is the stub portal's answer to urlcl / urlredirect: an
// accessible page, since browsertest checks every page it reaches.
func portalPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost { // the WS notification
			_, _ = io.WriteString(w, "ok")
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Retour – Portail</title></head>`+
			`<body><main><h1>Retour du paiement</h1><p>Retour reçu.</p></main></body></html>`)
	})
}

// TestPagesInBrowser visits every page in Chromium (axe-core runs on each)
// and presses the buttons as a payer would.
func TestPagesInBrowser(t *testing.T) {
	s, srv := newSim(t)
	portal := httptest.NewServer(portalPage())
	t.Cleanup(portal.Close)
	p := browsertest.New(t)

	p.Visit(srv.URL + "/")
	p.MustSee("Simulateur PayFiP")
	p.Visit(srv.URL + "/nulle-part")
	p.MustSee("Page introuvable")
	p.Visit(srv.URL + "/tpa/paiement.web?numcli=12&refdet=x")
	p.MustSee("Paiement impossible", "NUMCLI", "REFDET")

	// Classic mode.
	r := payfip.Request{NumCli: "004200", Exer: "2025", RefDet: payfip.NewRefDet(), Montant: 24311,
		Mel: "support@sistec.fr", Objet: "Restauration scolaire", Saisie: "T", URLCl: portal.URL + "/retour-classique"}
	u, err := payfip.ClassicURL(srv.URL+"/tpa/paiement.web", r)
	if err != nil {
		t.Fatal(err)
	}
	p.Visit(u)
	p.MustSee("Bienvenue sur la solution de paiement de la DGFIP",
		"Attention il s'agit d'un paiement de test. Aucun paiement ne sera réellement effectué.",
		"Informations sur la dette", "Référence de la dette", r.RefDet, "243,11 €", "support@sistec.fr",
		"Payer par carte bancaire", "Refuser le paiement", "Payer par prélèvement", "Annuler")
	p.ClickText("Payer par carte bancaire")
	p.MustSee("Retour du paiement")
	if !strings.HasPrefix(p.URL(), portal.URL+"/retour-classique?") || !strings.Contains(p.URL(), "resultrans=P") {
		t.Errorf("classic return URL %s", p.URL())
	}

	// WS mode.
	client := payfip.NewClient(srv.URL+"/tpa/services/securite", nil)
	r.RefDet, r.Saisie = payfip.NewRefDet(), "W"
	r.URLNotif, r.URLRedirect = portal.URL+"/notif", portal.URL+"/retour"
	idOp, err := client.CreerPaiementSecurise(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	p.Visit(payfip.WSPaymentURL(srv.URL+"/tpa/paiementws.web", idOp))
	p.MustSee("Bienvenue sur la solution de paiement de la DGFIP", "Refuser le prélèvement")
	p.MustNotSee("paiement de test")
	p.ClickText("Refuser le prélèvement")
	p.MustSee("Retour du paiement")
	if p.URL() != portal.URL+"/retour?idop="+idOp {
		t.Errorf("WS return URL %s", p.URL())
	}
	if info, _ := s.Payment(idOp); info.ResultTrans != "Z" || info.State != sim.StateDone {
		t.Errorf("payment %+v", info)
	}
	p.Visit(payfip.WSPaymentURL(srv.URL+"/tpa/paiementws.web", idOp))
	p.MustSee("déjà été utilisée")
}
