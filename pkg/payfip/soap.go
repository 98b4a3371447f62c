package payfip

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Namespace is the namespace of the PaiementSecuriseService operations.
const Namespace = "http://securite.service.tpa.cp.finances.gouv.fr/services/mas_securite/contrat_paiement_securise/PaiementSecuriseService"

// SOAPEnvNamespace is the SOAP 1.1 envelope namespace.
const SOAPEnvNamespace = "http://schemas.xmlsoap.org/soap/envelope/"

// FaultStringPrefix precedes the exception name in PayFiP's faultstring.
const FaultStringPrefix = "fr.gouv.finances.cp.tpa.webservice.exceptions."

// Fault kinds, named after PayFiP's exception classes.
const (
	KindFonctionnelle         = "FonctionnelleErreur"
	KindTechDysfonctionnement = "TechDysfonctionnementErreur"
	KindTechIndisponibilite   = "TechIndisponibiliteErreur"
	KindTechProtocolaire      = "TechProtocolaireErreur"
)

// Fault codes confirmed on the real server.
const (
	CodeUnknownIdOp   = "P1" // idOp unknown or purged
	CodePending       = "P5" // result not known yet
	CodeInvalidRefDet = "R3"
	CodeInvalidMel    = "A2"
)

// Causes of failures that say nothing about the payment; match them with
// errors.Is. All count as technical (IsTechnical). They only appear wrapped
// in an error that starts with "payfip: ".
var (
	ErrTimeout   = errors.New("PayFiP did not answer in time")
	ErrNotSOAP   = errors.New("answer is not SOAP")
	ErrTransport = errors.New("transport error")
)

// maxAnswer bounds what we read from PayFiP: answers are a few hundred bytes.
const maxAnswer = 1 << 20

// Fault is a SOAP fault from PayFiP. Kind is one of the Kind* constants,
// or "" when the fault carries none (e.g. a generic server fault).
type Fault struct {
	Kind        string
	Code        string
	Libelle     string
	Descriptif  string
	Severite    string
	FaultCode   string // SOAP faultcode, e.g. "S:Server"
	FaultString string // SOAP faultstring
	Op          string // operation that failed, set by Client
}

func (f *Fault) Error() string {
	var b strings.Builder
	b.WriteString("payfip: ")
	if f.Op != "" {
		b.WriteString(f.Op + ": ")
	}
	b.WriteString("SOAP fault")
	if f.Kind != "" {
		b.WriteString(" " + f.Kind)
	} else if f.FaultCode != "" {
		b.WriteString(" " + f.FaultCode)
	}
	if f.Code != "" {
		b.WriteString(" " + f.Code)
	}
	msg := f.Libelle
	if f.Descriptif != "" && f.Descriptif != f.Libelle {
		if msg != "" {
			msg += " - "
		}
		msg += f.Descriptif
	}
	if msg == "" && f.Kind == "" {
		msg = f.FaultString
	}
	if msg != "" {
		b.WriteString(": " + msg)
	}
	return b.String()
}

// Technical reports whether the fault is a technical one (or has no kind,
// which we treat the same way: retry later rather than blame the request).
func (f *Fault) Technical() bool {
	return f.Kind != KindFonctionnelle
}

func asFault(err error) (*Fault, bool) {
	var f *Fault
	ok := errors.As(err, &f)
	return f, ok
}

// IsPending reports a P5 fault: the payment is in progress, ask again later.
func IsPending(err error) bool {
	f, ok := asFault(err)
	return ok && f.Kind == KindFonctionnelle && f.Code == CodePending
}

// IsUnknown reports a P1 fault: the idOp is unknown or was purged (an idOp
// never taken to payment disappears the next night).
func IsUnknown(err error) bool {
	f, ok := asFault(err)
	return ok && f.Kind == KindFonctionnelle && f.Code == CodeUnknownIdOp
}

// IsTechnical reports a failure that says nothing about the payment: a
// technical fault (Tech*Erreur or a fault without kind), a timeout, a
// transport error or an answer that is not SOAP. Retry later.
func IsTechnical(err error) bool {
	if err == nil {
		return false
	}
	if f, ok := asFault(err); ok {
		return f.Technical()
	}
	return errors.Is(err, ErrTimeout) || errors.Is(err, ErrNotSOAP) || errors.Is(err, ErrTransport)
}

// XMLNode is a generic element: SOAP messages are read by local name so
// that prefixes and namespaces (which vary) do not matter. The simulator
// reads requests with it too.
type XMLNode struct {
	XMLName xml.Name
	Text    string    `xml:",chardata"`
	Nodes   []XMLNode `xml:",any"`
}

// Child is the first child element named local, or nil.
func (n *XMLNode) Child(local string) *XMLNode {
	for i := range n.Nodes {
		if n.Nodes[i].XMLName.Local == local {
			return &n.Nodes[i]
		}
	}
	return nil
}

func (n *XMLNode) childFold(local string) *XMLNode {
	for i := range n.Nodes {
		if strings.EqualFold(n.Nodes[i].XMLName.Local, local) {
			return &n.Nodes[i]
		}
	}
	return nil
}

func (n *XMLNode) childText(local string) string {
	if c := n.childFold(local); c != nil {
		return strings.TrimSpace(c.Text)
	}
	return ""
}

// decodeEnvelope returns the first element inside the SOAP Body.
func decodeEnvelope(body []byte) (*XMLNode, error) {
	var root XMLNode
	d := xml.NewDecoder(bytes.NewReader(body))
	d.CharsetReader = charsetReader
	if err := d.Decode(&root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotSOAP, err)
	}
	if root.XMLName.Local != "Envelope" {
		return nil, fmt.Errorf("%w: root element is <%s>", ErrNotSOAP, root.XMLName.Local)
	}
	b := root.Child("Body")
	if b == nil {
		return nil, fmt.Errorf("%w: no Body", ErrNotSOAP)
	}
	if len(b.Nodes) == 0 {
		return nil, fmt.Errorf("%w: empty Body", ErrNotSOAP)
	}
	return &b.Nodes[0], nil
}

// decodeResponse turns an HTTP answer into the fields of <return> (keys in
// lower case), or a *Fault, or an error wrapping ErrNotSOAP.
func decodeResponse(status int, body []byte) (map[string]string, error) {
	op, err := decodeEnvelope(body)
	if err != nil {
		return nil, fmt.Errorf("payfip: HTTP %d: %w", status, err)
	}
	if op.XMLName.Local == "Fault" {
		return nil, decodeFault(op)
	}
	if status != 200 {
		return nil, fmt.Errorf("payfip: HTTP %d: %w: <%s> instead of a SOAP fault", status, ErrNotSOAP, op.XMLName.Local)
	}
	ret := op.childFold("return")
	if ret == nil {
		// Some answers were reported without the <return> wrapper.
		ret = op
	}
	fields := make(map[string]string, len(ret.Nodes))
	for _, c := range ret.Nodes {
		k := strings.ToLower(c.XMLName.Local)
		if _, dup := fields[k]; !dup {
			fields[k] = strings.TrimSpace(c.Text)
		}
	}
	return fields, nil
}

// decodeFault reads a SOAP 1.1 <Fault>, with PayFiP's detail when present.
func decodeFault(n *XMLNode) *Fault {
	f := &Fault{
		FaultCode:   n.childText("faultcode"),
		FaultString: n.childText("faultstring"),
	}
	if d := n.childFold("detail"); d != nil {
		for i := range d.Nodes {
			e := &d.Nodes[i]
			if kind := knownKind(e.XMLName.Local); kind != "" {
				f.Kind = kind
				f.Code = e.childText("code")
				f.Libelle = e.childText("libelle")
				f.Descriptif = e.childText("descriptif")
				f.Severite = e.childText("severite")
				break
			}
		}
	}
	if f.Kind == "" {
		name := f.FaultString
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			name = name[i+1:]
		}
		f.Kind = knownKind(strings.TrimSpace(name))
	}
	return f
}

func knownKind(s string) string {
	switch s {
	case KindFonctionnelle, KindTechDysfonctionnement, KindTechIndisponibilite, KindTechProtocolaire:
		return s
	}
	return ""
}

// resultFromFields builds a Result from recupererDetailPaiementSecurise.
func resultFromFields(f map[string]string) (Result, error) {
	r := Result{
		ResultTrans: f["resultrans"],
		NumAuto:     f["numauto"],
		DatTrans:    f["dattrans"],
		HeurTrans:   f["heurtrans"],
		IdOp:        f["idop"],
		NumCli:      f["numcli"],
		Exer:        f["exer"],
		RefDet:      f["refdet"],
		Mel:         f["mel"],
		Objet:       f["objet"],
		Saisie:      f["saisie"],
	}
	if r.ResultTrans == "" {
		return r, errors.New("payfip: answer without resultrans")
	}
	if m := f["montant"]; m != "" {
		n, err := parseCents(m)
		if err != nil {
			return r, fmt.Errorf("payfip: answer: %w", err)
		}
		r.Montant = n
	}
	return r, nil
}

// charsetReader accepts the Latin-1 family besides UTF-8, in case a proxy
// or an old server declares it.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "iso-8859-1", "iso8859-1", "latin1", "latin-1", "iso-8859-15", "windows-1252", "cp1252":
		b, err := io.ReadAll(io.LimitReader(in, maxAnswer))
		if err != nil {
			return nil, err
		}
		var out strings.Builder
		for _, c := range b {
			out.WriteRune(rune(c))
		}
		return strings.NewReader(out.String()), nil
	}
	return nil, fmt.Errorf("unsupported charset %q", label)
}

// writeElem writes <name>escaped value</name>.
func writeElem(b *bytes.Buffer, name, value string) {
	b.WriteString("<" + name + ">")
	xml.EscapeText(b, []byte(value)) //nolint:errcheck // bytes.Buffer never fails
	b.WriteString("</" + name + ">")
}

// encodeRequest builds a SOAP 1.1 request: the operation in Namespace, its
// parameters unqualified inside <arg0>, in the order given.
func encodeRequest(op string, args [][2]string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>`)
	b.WriteString(`<soapenv:Envelope xmlns:soapenv="` + SOAPEnvNamespace + `" xmlns:pai="` + Namespace + `">`)
	b.WriteString(`<soapenv:Header/><soapenv:Body><pai:` + op + `><arg0>`)
	for _, a := range args {
		writeElem(&b, a[0], a[1])
	}
	b.WriteString(`</arg0></pai:` + op + `></soapenv:Body></soapenv:Envelope>`)
	return b.Bytes()
}
