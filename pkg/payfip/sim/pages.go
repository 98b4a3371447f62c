package sim

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"time"

	"portail/pkg/payfip"
)

// The pages imitate the real ones closely enough for the manual's
// screenshots and for browser tests (which run axe-core): lang="fr",
// landmarks, headings, real buttons in a form, no JavaScript, colours
// well above the 4.5:1 contrast ratio, and a layout that reflows down to
// 320 CSS px with 44 px tall buttons, as the portal's pages do.
const pagesSrc = `
{{define "head"}}<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
*{box-sizing:border-box}
body{margin:0;font-family:Marianne,Arial,Helvetica,sans-serif;color:#161616;background:#fff;line-height:1.5;overflow-wrap:break-word}
header{display:flex;flex-wrap:wrap;gap:.5rem 2rem;align-items:center;padding:1rem 2rem;border-bottom:1px solid #ddd}
header p{margin:0}
.marianne{font-weight:700;text-transform:uppercase;line-height:1.1}
.service{font-weight:700}
.service span{display:block;font-weight:400;color:#3a3a3a}
main{max-width:48rem;margin:0 auto;padding:1.5rem 2rem}
h1{font-size:1.75rem;margin:0 0 1rem}
h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
h1,h2,dd,li{overflow-wrap:anywhere}
.alerte{border-left:.3rem solid #ce0500;background:#ffe9e9;padding:.75rem 1rem;margin:1rem 0}
.alerte p{margin:0;color:#161616}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.25rem 1.5rem;margin:0}
dt{font-weight:700}
dd{margin:0;min-width:0}
.boutons{display:flex;flex-wrap:wrap;gap:1rem;margin-top:1rem}
button{font:inherit;font-weight:500;min-height:2.75rem;max-width:100%;padding:.5rem 1.5rem;border:1px solid #000091;background:#000091;color:#fff;cursor:pointer}
button:hover{background:#1212ff;border-color:#1212ff}
button.secondaire{background:#fff;color:#000091}
button.secondaire:hover{background:#eeeeff}
button:focus-visible{outline:3px solid #0a76f6;outline-offset:2px}
.annulation{margin-top:2rem;padding-top:1rem;border-top:1px solid #ddd}
footer{margin-top:2rem;padding:1rem 2rem;background:#f6f6f6;color:#3a3a3a;font-size:.875rem}
footer p{margin:0}
@media (max-width:40rem){
header,main,footer{padding-left:1rem;padding-right:1rem}
h1{font-size:1.5rem}
dl{grid-template-columns:minmax(0,1fr);gap:0}
dd{margin-bottom:.5rem}
.boutons button,.annulation button{width:100%}
}
</style>
</head>
<body>
<header>
<p class="marianne">République<br>française</p>
<p class="service">Direction générale des Finances publiques<span>PayFiP – simulateur local</span></p>
</header>
<main>
{{end}}

{{define "foot"}}</main>
<footer><p>Simulateur PayFiP du Portail des factures : aucune donnée bancaire n'est demandée et aucun paiement n'est réellement effectué.</p></footer>
</body>
</html>
{{end}}

{{define "payment"}}{{template "head" .}}
<h1>Bienvenue sur la solution de paiement de la DGFIP</h1>
{{if .Test}}<div class="alerte"><p>Attention il s'agit d'un paiement de test. Aucun paiement ne sera réellement effectué.</p></div>{{end}}
<section aria-labelledby="titre-dette">
<h2 id="titre-dette">Informations sur la dette</h2>
<dl>
<dt>Référence de la dette</dt><dd>{{.RefDet}}</dd>
<dt>Montant</dt><dd>{{.Montant}}</dd>
<dt>Adresse électronique</dt><dd>{{.Mel}}</dd>
{{with .Objet}}<dt>Objet</dt><dd>{{.}}</dd>{{end}}
</dl>
</section>
<form method="post" action="{{.Action}}">
{{range .Hidden}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}
<section aria-labelledby="titre-choix">
<h2 id="titre-choix">Choix du mode de paiement</h2>
<div class="boutons">
{{range .Buttons}}<button type="submit" name="choix" value="{{.Value}}"{{if .Secondary}} class="secondaire"{{end}}>{{.Label}}</button>
{{end}}</div>
</section>
<div class="annulation">
<button type="submit" name="choix" value="A" class="secondaire">Annuler</button>
</div>
</form>
{{template "foot" .}}{{end}}

{{define "message"}}{{template "head" .}}
<h1>{{.Heading}}</h1>
{{with .Message}}<p>{{.}}</p>{{end}}
{{with .Errors}}<ul>
{{range .}}<li>{{.}}</li>
{{end}}</ul>{{end}}
{{template "foot" .}}{{end}}
`

func parsePages() *template.Template {
	// The source is a constant: a parse error is a programming error.
	return template.Must(template.New("pages").Parse(pagesSrc))
}

type hiddenField struct{ Name, Value string }

type button struct {
	Value, Label string
	Secondary    bool
}

type pageView struct {
	Title   string
	Heading string
	Message string
	Errors  []string

	Test    bool
	RefDet  string
	Montant string
	Mel     string
	Objet   string
	Action  string
	Hidden  []hiddenField
	Buttons []button
}

func (s *Simulator) render(w http.ResponseWriter, status int, name string, v pageView) {
	var b bytes.Buffer
	if err := s.pages.ExecuteTemplate(&b, name, v); err != nil {
		s.log.Error("payfip sim: render", "page", name, "err", err)
		http.Error(w, "Erreur interne du simulateur", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	// No script at all; form-action is left open since the form ends in a
	// redirect to the portal.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (s *Simulator) errorPage(w http.ResponseWriter, status int, heading, msg string, errs []string) {
	s.render(w, status, "message", pageView{
		Title: heading + " – PayFiP", Heading: heading, Message: msg, Errors: errs,
	})
}

func (s *Simulator) paymentPage(w http.ResponseWriter, p PaymentInfo, action string, hidden []hiddenField) {
	buttons := []button{
		{Value: "P", Label: "Payer par carte bancaire"},
		{Value: "R", Label: "Refuser le paiement", Secondary: true},
		{Value: "V", Label: "Payer par prélèvement"},
	}
	if p.Mode == payfip.ModeWS {
		buttons = append(buttons, button{Value: "Z", Label: "Refuser le prélèvement", Secondary: true})
	}
	s.render(w, http.StatusOK, "payment", pageView{
		Title:   "Bienvenue sur la solution de paiement de la DGFIP",
		Test:    p.Saisie == "T",
		RefDet:  p.RefDet,
		Montant: euros(p.Montant),
		Mel:     p.Mel,
		Objet:   p.Objet,
		Action:  action,
		Hidden:  hidden,
		Buttons: buttons,
	})
}

func (s *Simulator) index(w http.ResponseWriter, r *http.Request) {
	s.render(w, http.StatusOK, "message", pageView{
		Title:   "Simulateur PayFiP",
		Heading: "Simulateur PayFiP",
		Message: "Ce service imite PayFiP pour le développement et les tests. Adresses disponibles :",
		Errors: []string{
			"/tpa/paiement.web : paiement classique (TIPI Régie)",
			"/tpa/services/securite : service web SOAP (WSDL avec ?wsdl)",
			"/tpa/paiementws.web?idop=… : page de paiement du mode service web",
			"/_sim/control, /_sim/payments, /_sim/clock, /_sim/reset : pilotage des tests (JSON)",
		},
	})
}

func (s *Simulator) notFound(w http.ResponseWriter, r *http.Request) {
	s.errorPage(w, http.StatusNotFound, "Page introuvable", "L'adresse demandée n'existe pas sur ce simulateur.", nil)
}

// complete records the outcome of a payment; a forced outcome wins over
// the button and is used once.
func (s *Simulator) completeLocked(p *PaymentInfo, choix string) {
	if s.ctrl.ForceOutcome != "" {
		choix = s.ctrl.ForceOutcome
		s.ctrl.ForceOutcome = ""
	}
	now := s.nowLocked()
	local := now.In(s.paris)
	p.State = StateDone
	p.DoneAt = &now
	p.ResultTrans = choix
	p.DatTrans = local.Format("02012006")
	p.HeurTrans = local.Format("1504")
	if choix == "P" || choix == "V" {
		p.NumAuto = newNumAuto() // absent when refused or abandoned
	}
	s.log.Info("payfip sim: payment done", "id", p.ID, "mode", p.Mode, "resultrans", choix)
}

// --- classic mode ---

func (s *Simulator) classicPage(w http.ResponseWriter, r *http.Request) {
	p := classicParams(r.URL.Query())
	if vs := s.check(payfip.ModeClassic, p); len(vs) > 0 {
		msgs := make([]string, len(vs))
		for i, v := range vs {
			msgs[i] = v.Libelle
		}
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible",
			"La demande de paiement transmise par votre collectivité est invalide :", msgs)
		return
	}
	if r.Method == http.MethodHead { // no payment session for a link check
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		return
	}
	montant, _ := cents(p.Montant) // checked above
	s.mu.Lock()
	now := s.nowLocked()
	info := &PaymentInfo{
		ID: newUUID(), Mode: payfip.ModeClassic, State: StateInProgress,
		NumCli: p.NumCli, Exer: p.Exer, RefDet: p.RefDet, Montant: montant, Mel: p.Mel,
		Objet: p.Objet, Saisie: p.Saisie, URLCl: p.URLCl, CreatedAt: now, OpenedAt: &now,
	}
	s.addLocked(info)
	view := info.clone()
	s.mu.Unlock()
	s.log.Info("payfip sim: classic payment opened", "id", info.ID, "refdet", p.RefDet)
	s.paymentPage(w, view, "paiement.web", []hiddenField{{Name: "session", Value: view.ID}})
}

func (s *Simulator) classicSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Le formulaire reçu est illisible.", nil)
		return
	}
	id, choix := r.PostForm.Get("session"), r.PostForm.Get("choix")
	if choix != "P" && choix != "R" && choix != "V" && choix != "A" {
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Le choix de paiement est invalide.", nil)
		return
	}
	s.mu.Lock()
	p, ok := s.payments[id]
	if !ok || p.Mode != payfip.ModeClassic {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Cette session de paiement est inconnue.", nil)
		return
	}
	if p.State != StateInProgress {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement déjà traité", "Cette demande de paiement a déjà été traitée.", nil)
		return
	}
	s.completeLocked(p, choix)
	res := p.clone()
	method := s.ctrl.ClassicCallbackMethod
	s.mu.Unlock()

	form := classicResult(res)
	s.deliver(delivery{id: res.ID, method: method, target: res.URLCl, form: form}, true)
	back, err := withParams(res.URLCl, form)
	if err != nil { // urlcl was validated when the page was opened
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "L'adresse de retour est invalide.", nil)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// classicResult is what urlcl receives: the echoed parameters plus the result.
func classicResult(p PaymentInfo) url.Values {
	v := url.Values{}
	v.Set("numcli", p.NumCli)
	v.Set("exer", p.Exer)
	v.Set("refdet", p.RefDet)
	if p.Objet != "" {
		v.Set("objet", p.Objet)
	}
	v.Set("montant", formatInt(p.Montant))
	v.Set("mel", p.Mel)
	v.Set("saisie", p.Saisie)
	v.Set("resultrans", p.ResultTrans)
	if p.NumAuto != "" {
		v.Set("numauto", p.NumAuto)
	}
	v.Set("dattrans", p.DatTrans)
	v.Set("heurtrans", p.HeurTrans)
	return v
}

// --- WS mode ---

// idOpValidity is how long an idOp may wait before its page is opened.
const idOpValidity = 15 * time.Minute

func (s *Simulator) wsPage(w http.ResponseWriter, r *http.Request) {
	id := getFold(r.URL.Query(), "idop")
	s.mu.Lock()
	s.purgeLocked()
	p, ok := s.payments[id]
	switch {
	case id == "" || !ok || p.Mode != payfip.ModeWS || p.State == StatePurged:
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Cette opération de paiement est inconnue.", nil)
		return
	case p.State != StateCreated:
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible",
			"Cette opération de paiement a déjà été utilisée. Veuillez recommencer depuis le site de votre collectivité.", nil)
		return
	case s.nowLocked().Sub(p.CreatedAt) > idOpValidity:
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible",
			"Cette opération de paiement a expiré (plus de 15 minutes). Veuillez recommencer depuis le site de votre collectivité.", nil)
		return
	}
	if r.Method != http.MethodHead { // a HEAD (link check, prefetch) must not use the idOp
		now := s.nowLocked()
		p.State = StateInProgress
		p.OpenedAt = &now
	}
	view := p.clone()
	s.mu.Unlock()
	s.log.Info("payfip sim: WS payment opened", "idop", id)
	s.paymentPage(w, view, "paiementws.web", []hiddenField{{Name: "idop", Value: id}})
}

func (s *Simulator) wsSubmit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Le formulaire reçu est illisible.", nil)
		return
	}
	id, choix := getFold(r.PostForm, "idop"), r.PostForm.Get("choix")
	switch choix {
	case "P", "R", "V", "Z", "A":
	default:
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Le choix de paiement est invalide.", nil)
		return
	}
	s.mu.Lock()
	s.purgeLocked()
	p, ok := s.payments[id]
	if !ok || p.Mode != payfip.ModeWS || p.State == StatePurged || p.State == StateCreated {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "Cette opération de paiement est inconnue.", nil)
		return
	}
	if p.State != StateInProgress {
		s.mu.Unlock()
		s.errorPage(w, http.StatusBadRequest, "Paiement déjà traité", "Cette opération de paiement a déjà été traitée.", nil)
		return
	}
	s.completeLocked(p, choix)
	res := p.clone()
	s.mu.Unlock()

	s.deliver(delivery{id: id, method: http.MethodPost, target: res.URLNotif, form: url.Values{"idOp": {id}}}, false)
	back, err := withParams(res.URLRedirect, url.Values{"idop": {id}})
	if err != nil { // urlredirect was validated by creerPaiementSecurise
		s.errorPage(w, http.StatusBadRequest, "Paiement impossible", "L'adresse de retour est invalide.", nil)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
