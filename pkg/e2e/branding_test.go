package e2e

import (
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/browsertest"
)

func TestEachCommuneLoginPageShowsItsBranding(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	p := browsertest.New(t)
	for host, want := range map[string][]string{
		"sistec.localhost":    {".. MAIRIE DE SISTEC ..", "Facturation Restauration scolaire"},
		"belcastel.localhost": {".. MAIRIE DE BELCASTEL ..", "Facturation Eau et Assainissement"},
	} {
		p.Visit(e.URL(host, "/"))
		if p.Status() != 200 {
			t.Fatalf("%s: status %d", host, p.Status())
		}
		p.MustSee(append(want, "LE PORTAIL DES FACTURES", "Veuillez vous connecter", "Se souvenir de moi", "Oublié ?", "Connexion", "J'active mon compte")...)
		status, css, _ := p.Fetch(e.URL(host, "/theme.css"))
		if status != 200 {
			t.Fatalf("%s theme: %d", host, status)
		}
		colour := map[string]string{"sistec.localhost": "#1d4e89", "belcastel.localhost": "#2d6a3e"}[host]
		if !strings.Contains(string(css), colour) {
			t.Errorf("%s: theme lacks its colour %s: %s", host, colour, css)
		}
		status, _, h := p.Fetch(e.URL(host, "/logo"))
		if status != 200 || h["Content-Type"] != "image/svg+xml" {
			t.Errorf("%s logo: %d %v", host, status, h)
		}
	}
	p.Visit(e.URL("belcastel.localhost", "/"))
	p.MustNotSee("SISTEC")
}

func TestUnknownHostGetsPortailInconnu(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	p := browsertest.New(t)
	p.Visit(e.URL("inconnu.localhost", "/"))
	if p.Status() != 404 {
		t.Fatalf("unknown host: status %d", p.Status())
	}
	p.MustSee("Portail inconnu")
	p.MustNotSee("MAIRIE DE")
}
