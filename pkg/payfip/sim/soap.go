package sim

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"portail/pkg/payfip"
)

// soapCall is a parsed request: the operation and the children of <arg0>,
// by exact (case-sensitive) name, as JAX-WS binds them.
type soapCall struct {
	op   xml.Name
	args map[string]string
}

func parseSOAP(body []byte) (soapCall, error) {
	var env payfip.XMLNode
	if err := xml.Unmarshal(body, &env); err != nil {
		return soapCall{}, err
	}
	if env.XMLName.Local != "Envelope" || env.XMLName.Space != payfip.SOAPEnvNamespace {
		return soapCall{}, fmt.Errorf("not a SOAP 1.1 envelope: {%s}%s", env.XMLName.Space, env.XMLName.Local)
	}
	b := env.Child("Body")
	if b == nil || len(b.Nodes) == 0 {
		return soapCall{}, fmt.Errorf("empty SOAP body")
	}
	op := b.Nodes[0]
	c := soapCall{op: op.XMLName, args: map[string]string{}}
	if a := op.Child("arg0"); a != nil {
		for _, f := range a.Nodes {
			c.args[f.XMLName.Local] = f.Text
		}
	}
	return c, nil
}

func (s *Simulator) soap(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		writeFault(w, "S:Client", "Couldn't read the SOAP message: "+err.Error(), nil)
		return
	}
	if s.injectFault(w, r) {
		return
	}
	c, err := parseSOAP(body)
	if err != nil {
		writeFault(w, "S:Client", "Couldn't parse the SOAP message: "+err.Error(), nil)
		return
	}
	if c.op.Space != payfip.Namespace {
		writeFault(w, "S:Client", fmt.Sprintf("Cannot find dispatch method for {%s}%s", c.op.Space, c.op.Local), nil)
		return
	}
	switch c.op.Local {
	case "creerPaiementSecurise":
		s.creerPaiementSecurise(w, c.args)
	case "recupererDetailPaiementSecurise":
		s.recupererDetailPaiementSecurise(w, c.args)
	case "recupererDetailClient":
		s.recupererDetailClient(w, c.args)
	default:
		writeFault(w, "S:Client", fmt.Sprintf("Cannot find dispatch method for {%s}%s", c.op.Space, c.op.Local), nil)
	}
}

// injectFault applies the control's fault to this call; true when the
// call has been answered (or abandoned) by it.
func (s *Simulator) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.ctrl.Fault
	if f != FaultNone {
		s.ctrl.FaultCount--
		if s.ctrl.FaultCount <= 0 {
			s.ctrl.Fault, s.ctrl.FaultCount = FaultNone, 0
		}
	}
	s.mu.Unlock()
	switch f {
	case Fault999:
		writeFault(w, "S:Server", payfip.FaultStringPrefix+payfip.KindTechDysfonctionnement, &payfipError{
			Kind: payfip.KindTechDysfonctionnement, Code: "999",
			Libelle: "Erreur technique", Descriptif: "Dysfonctionnement technique simulé", Severite: "1",
		})
		return true
	case FaultIndisponible:
		writeFault(w, "S:Server", payfip.FaultStringPrefix+payfip.KindTechIndisponibilite, &payfipError{
			Kind: payfip.KindTechIndisponibilite, Code: "998",
			Libelle: "Service indisponible", Descriptif: "Indisponibilité simulée", Severite: "1",
		})
		return true
	case FaultHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = io.WriteString(w, "<!DOCTYPE html><html lang=\"fr\"><head><title>502 Bad Gateway</title></head><body><main><h1>502 Bad Gateway</h1></main></body></html>")
		return true
	case FaultTimeout:
		t := time.NewTimer(s.hang)
		defer t.Stop()
		select {
		case <-t.C:
			return false // answer late, normally
		case <-r.Context().Done():
			return true // the client gave up
		case <-s.ctx.Done():
			http.Error(w, "simulator closing", http.StatusServiceUnavailable)
			return true
		}
	}
	return false
}

func (s *Simulator) creerPaiementSecurise(w http.ResponseWriter, a map[string]string) {
	p := params{
		NumCli: a["numcli"], Exer: a["exer"], RefDet: a["refdet"], Montant: a["montant"],
		Mel: a["mel"], Objet: a["objet"], Saisie: a["saisie"],
		URLNotif: a["urlnotif"], URLRedirect: a["urlredirect"],
	}
	if vs := s.check(payfip.ModeWS, p); len(vs) > 0 {
		writeFunctional(w, vs[0].Code, vs[0].Libelle)
		return
	}
	montant, _ := cents(p.Montant) // checked above
	s.mu.Lock()
	info := &PaymentInfo{
		ID: newUUID(), Mode: payfip.ModeWS, State: StateCreated,
		NumCli: p.NumCli, Exer: p.Exer, RefDet: p.RefDet, Montant: montant, Mel: p.Mel,
		Objet: p.Objet, Saisie: p.Saisie, URLNotif: p.URLNotif, URLRedirect: p.URLRedirect,
		CreatedAt: s.nowLocked(),
	}
	s.addLocked(info)
	s.mu.Unlock()
	s.log.Info("payfip sim: idOp created", "idop", info.ID, "refdet", p.RefDet, "montant", montant)
	writeResponse(w, "creerPaiementSecuriseResponse", [][2]string{{"idOp", info.ID}})
}

func (s *Simulator) recupererDetailPaiementSecurise(w http.ResponseWriter, a map[string]string) {
	id := a["idOp"]
	s.mu.Lock()
	s.purgeLocked()
	p, ok := s.payments[id]
	var res PaymentInfo
	if ok {
		res = p.clone()
	}
	s.mu.Unlock()
	switch {
	case !ok || res.Mode != payfip.ModeWS || res.State == StatePurged:
		writeFunctional(w, payfip.CodeUnknownIdOp, "IdOp incorrect.")
		return
	case res.State != StateDone:
		writeFunctional(w, payfip.CodePending, "Résultat de la transaction non connu.")
		return
	}
	fields := [][2]string{
		{"dattrans", res.DatTrans},
		{"exer", res.Exer},
		{"heurtrans", res.HeurTrans},
		{"idOp", res.ID},
		{"mel", res.Mel},
		{"montant", formatInt(res.Montant)},
	}
	if res.NumAuto != "" {
		fields = append(fields, [2]string{"numauto", res.NumAuto})
	}
	fields = append(fields, [2]string{"numcli", res.NumCli})
	if res.Objet != "" {
		fields = append(fields, [2]string{"objet", res.Objet})
	}
	fields = append(fields,
		[2]string{"refdet", res.RefDet},
		[2]string{"resultrans", res.ResultTrans},
		[2]string{"saisie", res.Saisie},
	)
	writeResponse(w, "recupererDetailPaiementSecuriseResponse", fields)
}

func (s *Simulator) recupererDetailClient(w http.ResponseWriter, a map[string]string) {
	n := a["numCli"]
	if !digits(n, 6) {
		writeFunctional(w, "C1", "Le numéro de client (NUMCLI) est absent ou incorrect.")
		return
	}
	writeResponse(w, "recupererDetailClientResponse", [][2]string{
		{"libelleN1", "DGFIP SIMULATEUR"},
		{"libelleN2", "COLLECTIVITE " + n},
		{"libelleN3", "REGIE " + n},
		{"numcli", n},
	})
}

type payfipError struct {
	Kind, Code, Libelle, Descriptif, Severite string
}

func writeFunctional(w http.ResponseWriter, code, libelle string) {
	writeFault(w, "S:Server", payfip.FaultStringPrefix+payfip.KindFonctionnelle, &payfipError{
		Kind: payfip.KindFonctionnelle, Code: code, Libelle: libelle, Severite: "2",
	})
}

func elem(b *bytes.Buffer, name, value string) {
	b.WriteString("<" + name + ">")
	_ = xml.EscapeText(b, []byte(value)) // bytes.Buffer never fails
	b.WriteString("</" + name + ">")
}

const envOpen = `<?xml version="1.0" encoding="UTF-8"?><S:Envelope xmlns:S="` + payfip.SOAPEnvNamespace + `"><S:Body>`
const envClose = `</S:Body></S:Envelope>`

// writeResponse answers like JAX-WS: ns2:<op>Response, then <return> with
// unqualified fields.
func writeResponse(w http.ResponseWriter, name string, fields [][2]string) {
	var b bytes.Buffer
	b.WriteString(envOpen)
	b.WriteString(`<ns2:` + name + ` xmlns:ns2="` + payfip.Namespace + `"><return>`)
	for _, f := range fields {
		elem(&b, f[0], f[1])
	}
	b.WriteString(`</return></ns2:` + name + `>`)
	b.WriteString(envClose)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// writeFault answers HTTP 500 with a SOAP 1.1 fault, with PayFiP's detail
// element when e is set.
func writeFault(w http.ResponseWriter, code, faultstring string, e *payfipError) {
	var b bytes.Buffer
	b.WriteString(envOpen)
	b.WriteString(`<S:Fault>`)
	elem(&b, "faultcode", code)
	elem(&b, "faultstring", faultstring)
	if e != nil {
		b.WriteString(`<detail><ns2:` + e.Kind + ` xmlns:ns2="` + payfip.Namespace + `">`)
		elem(&b, "code", e.Code)
		elem(&b, "descriptif", e.Descriptif)
		elem(&b, "libelle", e.Libelle)
		elem(&b, "severite", e.Severite)
		b.WriteString(`</ns2:` + e.Kind + `></detail>`)
	}
	b.WriteString(`</S:Fault>`)
	b.WriteString(envClose)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = w.Write(b.Bytes())
}

func formatInt(n int64) string { return strconv.FormatInt(n, 10) }

// wsdl serves a minimal WSDL (document/literal) for ?wsdl, enough for
// tools that want to look; the portal does not need it.
func (s *Simulator) wsdl(w http.ResponseWriter, r *http.Request) {
	if _, ok := r.URL.Query()["wsdl"]; !ok {
		if _, ok := r.URL.Query()["WSDL"]; !ok {
			s.errorPage(w, http.StatusMethodNotAllowed, "Service web PayFiP",
				"Ce point d'accès attend des requêtes SOAP en POST ; le WSDL est disponible avec ?wsdl.", nil)
			return
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	var addr bytes.Buffer
	_ = xml.EscapeText(&addr, []byte(scheme+"://"+r.Host+"/tpa/services/securite"))
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = fmt.Fprintf(w, wsdlTemplate, payfip.Namespace, addr.String())
}

const wsdlTemplate = `<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:tns="%[1]s" targetNamespace="%[1]s" name="PaiementSecuriseService">
  <types>
    <xs:schema targetNamespace="%[1]s" elementFormDefault="unqualified">
      <xs:complexType name="CreerPaiementSecuriseRequest"><xs:sequence>
        <xs:element name="exer" type="xs:string"/><xs:element name="mel" type="xs:string"/>
        <xs:element name="montant" type="xs:string"/><xs:element name="numcli" type="xs:string"/>
        <xs:element name="objet" type="xs:string" minOccurs="0"/><xs:element name="refdet" type="xs:string"/>
        <xs:element name="saisie" type="xs:string"/><xs:element name="urlnotif" type="xs:string"/>
        <xs:element name="urlredirect" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="CreerPaiementSecuriseResponse"><xs:sequence>
        <xs:element name="idOp" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="RecupererDetailPaiementSecuriseRequest"><xs:sequence>
        <xs:element name="idOp" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="RecupererDetailPaiementSecuriseResponse"><xs:sequence>
        <xs:element name="dattrans" type="xs:string"/><xs:element name="exer" type="xs:string"/>
        <xs:element name="heurtrans" type="xs:string"/><xs:element name="idOp" type="xs:string"/>
        <xs:element name="mel" type="xs:string"/><xs:element name="montant" type="xs:string"/>
        <xs:element name="numauto" type="xs:string" minOccurs="0"/><xs:element name="numcli" type="xs:string"/>
        <xs:element name="objet" type="xs:string" minOccurs="0"/><xs:element name="refdet" type="xs:string"/>
        <xs:element name="resultrans" type="xs:string"/><xs:element name="saisie" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="RecupererDetailClientRequest"><xs:sequence>
        <xs:element name="numCli" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="RecupererDetailClientResponse"><xs:sequence>
        <xs:element name="libelleN1" type="xs:string"/><xs:element name="libelleN2" type="xs:string"/>
        <xs:element name="libelleN3" type="xs:string"/><xs:element name="numcli" type="xs:string"/>
      </xs:sequence></xs:complexType>
      <xs:complexType name="Erreur"><xs:sequence>
        <xs:element name="code" type="xs:string"/><xs:element name="descriptif" type="xs:string"/>
        <xs:element name="libelle" type="xs:string"/><xs:element name="severite" type="xs:int"/>
      </xs:sequence></xs:complexType>
      <xs:element name="creerPaiementSecurise"><xs:complexType><xs:sequence><xs:element name="arg0" type="tns:CreerPaiementSecuriseRequest"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="creerPaiementSecuriseResponse"><xs:complexType><xs:sequence><xs:element name="return" type="tns:CreerPaiementSecuriseResponse"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="recupererDetailPaiementSecurise"><xs:complexType><xs:sequence><xs:element name="arg0" type="tns:RecupererDetailPaiementSecuriseRequest"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="recupererDetailPaiementSecuriseResponse"><xs:complexType><xs:sequence><xs:element name="return" type="tns:RecupererDetailPaiementSecuriseResponse"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="recupererDetailClient"><xs:complexType><xs:sequence><xs:element name="arg0" type="tns:RecupererDetailClientRequest"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="recupererDetailClientResponse"><xs:complexType><xs:sequence><xs:element name="return" type="tns:RecupererDetailClientResponse"/></xs:sequence></xs:complexType></xs:element>
      <xs:element name="FonctionnelleErreur" type="tns:Erreur"/>
      <xs:element name="TechDysfonctionnementErreur" type="tns:Erreur"/>
      <xs:element name="TechIndisponibiliteErreur" type="tns:Erreur"/>
      <xs:element name="TechProtocolaireErreur" type="tns:Erreur"/>
    </xs:schema>
  </types>
  <message name="creerPaiementSecurise"><part name="parameters" element="tns:creerPaiementSecurise"/></message>
  <message name="creerPaiementSecuriseResponse"><part name="parameters" element="tns:creerPaiementSecuriseResponse"/></message>
  <message name="recupererDetailPaiementSecurise"><part name="parameters" element="tns:recupererDetailPaiementSecurise"/></message>
  <message name="recupererDetailPaiementSecuriseResponse"><part name="parameters" element="tns:recupererDetailPaiementSecuriseResponse"/></message>
  <message name="recupererDetailClient"><part name="parameters" element="tns:recupererDetailClient"/></message>
  <message name="recupererDetailClientResponse"><part name="parameters" element="tns:recupererDetailClientResponse"/></message>
  <message name="FonctionnelleErreur"><part name="fault" element="tns:FonctionnelleErreur"/></message>
  <portType name="PaiementSecuriseService">
    <operation name="creerPaiementSecurise"><input message="tns:creerPaiementSecurise"/><output message="tns:creerPaiementSecuriseResponse"/><fault name="FonctionnelleErreur" message="tns:FonctionnelleErreur"/></operation>
    <operation name="recupererDetailPaiementSecurise"><input message="tns:recupererDetailPaiementSecurise"/><output message="tns:recupererDetailPaiementSecuriseResponse"/><fault name="FonctionnelleErreur" message="tns:FonctionnelleErreur"/></operation>
    <operation name="recupererDetailClient"><input message="tns:recupererDetailClient"/><output message="tns:recupererDetailClientResponse"/><fault name="FonctionnelleErreur" message="tns:FonctionnelleErreur"/></operation>
  </portType>
  <binding name="PaiementSecuriseServicePortBinding" type="tns:PaiementSecuriseService">
    <soap:binding transport="http://schemas.xmlsoap.org/soap/http" style="document"/>
    <operation name="creerPaiementSecurise"><soap:operation soapAction=""/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output><fault name="FonctionnelleErreur"><soap:fault name="FonctionnelleErreur" use="literal"/></fault></operation>
    <operation name="recupererDetailPaiementSecurise"><soap:operation soapAction=""/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output><fault name="FonctionnelleErreur"><soap:fault name="FonctionnelleErreur" use="literal"/></fault></operation>
    <operation name="recupererDetailClient"><soap:operation soapAction=""/><input><soap:body use="literal"/></input><output><soap:body use="literal"/></output><fault name="FonctionnelleErreur"><soap:fault name="FonctionnelleErreur" use="literal"/></fault></operation>
  </binding>
  <service name="PaiementSecuriseService">
    <port name="PaiementSecuriseServicePort" binding="tns:PaiementSecuriseServicePortBinding"><soap:address location="%[2]s"/></port>
  </service>
</definitions>
`
