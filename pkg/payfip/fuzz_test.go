package payfip

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// The fuzz targets check that nothing PayFiP (or an attacker posing as it)
// sends can make the decoders panic, and that what they accept is sane.

func FuzzParseClassicCallback(f *testing.F) {
	for _, s := range []string{
		"numcli=004200&exer=2025&refdet=ABC123DEF&montant=24311&mel=a%40b.fr&saisie=T&resultrans=P&numauto=123456&dattrans=14072025&heurtrans=1405",
		"NUMCLI=004200&REFDET=ABC123DEF&MONTANT=100&RESULTRANS=A",
		"refdet=ABC123DEF&REFDET=XYZ987654&numcli=004200&montant=1&resultrans=R",
		"montant=99999999999999999999&numcli=004200&refdet=ABC123DEF&resultrans=P",
		"montant=%2B1&numcli=004200&refdet=ABC123DEF&resultrans=P",
		"%zz=1&;&&==",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		v, _ := url.ParseQuery(q) // keeps what it could parse, as a server would
		res, err := ParseClassicCallback(v)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "payfip: ") {
				t.Fatalf("error without prefix: %q", err)
			}
			return
		}
		if !ValidRefDet(res.RefDet) || !isDigits(res.NumCli, 6) || res.Montant < 0 || res.ResultTrans == "" {
			t.Fatalf("accepted an invalid callback: %+v", res)
		}
		_ = res.Outcome()
		_, _ = res.PaidAt()
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, s := range []string{respCreer, respDetail, respFaultP1, respFault999, respFaultBare, respLatin1,
		"", "<", "<html></html>", "<Envelope><Body/></Envelope>",
		`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><r><return><montant>x</montant><resultrans>P</resultrans></return></r></S:Body></S:Envelope>`,
		`<?xml version="1.0" encoding="EBCDIC"?><a/>`,
	} {
		f.Add(200, []byte(s))
		f.Add(500, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		fields, err := decodeResponse(status, body)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "payfip: ") {
				t.Fatalf("error without prefix: %q", err)
			}
			var fault *Fault
			if !errors.As(err, &fault) && !errors.Is(err, ErrNotSOAP) {
				t.Fatalf("untyped error: %v", err)
			}
			if !IsTechnical(err) && !(errors.As(err, &fault) && fault.Kind == KindFonctionnelle) {
				t.Fatalf("error neither technical nor functional: %v", err)
			}
			return
		}
		if status != 200 {
			t.Fatalf("HTTP %d accepted as a success", status)
		}
		if res, err := resultFromFields(fields); err == nil {
			_ = res.Outcome()
			if res.Montant < 0 {
				t.Fatalf("negative montant: %+v", res)
			}
		}
	})
}

func FuzzDecodeFault(f *testing.F) {
	for _, s := range []string{respFaultP1, respFault999, respFaultBare, respLatin1,
		`<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault><faultcode>S:Client</faultcode><faultstring>Cannot find dispatch method</faultstring></S:Fault></S:Body></S:Envelope>`,
		`<Envelope><Body><Fault><detail><FonctionnelleErreur><code>P5</code></FonctionnelleErreur><TechProtocolaireErreur/></detail></Fault></Body></Envelope>`,
		`<Envelope><Body><Fault><faultstring>...</faultstring><detail><x><y><z/></y></x></detail></Fault></Body></Envelope>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		op, err := decodeEnvelope(body)
		if err != nil {
			return
		}
		fault := decodeFault(op)
		msg := fault.Error()
		if !strings.HasPrefix(msg, "payfip: SOAP fault") {
			t.Fatalf("bad message %q", msg)
		}
		switch fault.Kind {
		case "", KindFonctionnelle, KindTechDysfonctionnement, KindTechIndisponibilite, KindTechProtocolaire:
		default:
			t.Fatalf("unknown kind %q", fault.Kind)
		}
		if IsPending(fault) && IsUnknown(fault) {
			t.Fatal("both pending and unknown")
		}
		if (IsPending(fault) || IsUnknown(fault)) && IsTechnical(fault) {
			t.Fatal("functional code reported as technical")
		}
	})
}
