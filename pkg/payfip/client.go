package payfip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultTimeout bounds a SOAP call when NewClient is given no HTTP client.
const DefaultTimeout = 15 * time.Second

// Client calls PayFiP's SOAP service (WS mode). It is safe for concurrent use.
type Client struct {
	url  string
	http *http.Client
}

// NewClient returns a client for the SOAP endpoint soapURL (e.g.
// https://www.payfip.gouv.fr/tpa/services/securite). httpClient carries the
// timeout; nil means a client with DefaultTimeout.
func NewClient(soapURL string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultTimeout}
	}
	return &Client{url: soapURL, http: httpClient}
}

// ClientDetail is the answer of recupererDetailClient.
type ClientDetail struct {
	NumCli    string
	LibelleN1 string
	LibelleN2 string
	LibelleN3 string
}

// CreerPaiementSecurise registers a payment and returns its idOp; send the
// browser to WSPaymentURL(base, idOp) within 15 minutes. r is sent as is:
// call r.Validate(ModeWS, cap) first. PayFiP is the judge of what it accepts
// and answers a FonctionnelleErreur *Fault otherwise (R3 refdet, A2 mel…).
func (c *Client) CreerPaiementSecurise(ctx context.Context, r Request) (string, error) {
	args := [][2]string{
		{"exer", r.Exer},
		{"mel", r.Mel},
		{"montant", strconv.FormatInt(r.Montant, 10)},
		{"numcli", r.NumCli},
	}
	if r.Objet != "" {
		args = append(args, [2]string{"objet", r.Objet})
	}
	args = append(args,
		[2]string{"refdet", r.RefDet},
		[2]string{"saisie", r.Saisie},
		[2]string{"urlnotif", r.URLNotif},
		[2]string{"urlredirect", r.URLRedirect},
	)
	f, err := c.call(ctx, "creerPaiementSecurise", args)
	if err != nil {
		return "", err
	}
	idOp := f["idop"]
	if !ValidIdOp(idOp) {
		return "", fmt.Errorf("payfip: creerPaiementSecurise: %w: invalid idOp %q", ErrNotSOAP, idOp)
	}
	return idOp, nil
}

// RecupererDetailPaiementSecurise asks for the result of idOp: the only
// trusted result. While the payer is on PayFiP it fails with IsPending; an
// idOp never taken to payment fails with IsUnknown after the next night.
func (c *Client) RecupererDetailPaiementSecurise(ctx context.Context, idOp string) (Result, error) {
	if !ValidIdOp(idOp) {
		return Result{}, fmt.Errorf("payfip: invalid idOp %q", idOp)
	}
	f, err := c.call(ctx, "recupererDetailPaiementSecurise", [][2]string{{"idOp", idOp}})
	if err != nil {
		return Result{}, err
	}
	res, err := resultFromFields(f)
	if err != nil {
		return res, err
	}
	if res.IdOp != "" && !strings.EqualFold(res.IdOp, idOp) {
		return res, fmt.Errorf("payfip: asked for idOp %q, got the result of %q", idOp, res.IdOp)
	}
	if res.IdOp == "" {
		res.IdOp = idOp
	}
	return res, nil
}

// RecupererDetailClient returns the collectivity's details; use it to check
// a tenant's numcli (an unknown or malformed one gives a *Fault).
func (c *Client) RecupererDetailClient(ctx context.Context, numcli string) (ClientDetail, error) {
	f, err := c.call(ctx, "recupererDetailClient", [][2]string{{"numCli", numcli}})
	if err != nil {
		return ClientDetail{}, err
	}
	return ClientDetail{
		NumCli:    f["numcli"],
		LibelleN1: f["libellen1"],
		LibelleN2: f["libellen2"],
		LibelleN3: f["libellen3"],
	}, nil
}

func (c *Client) call(ctx context.Context, op string, args [][2]string) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(encodeRequest(op, args)))
	if err != nil {
		return nil, fmt.Errorf("payfip: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("Accept", "text/xml")
	req.Header.Set("SOAPAction", `""`)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, transportError(op, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, transportError(op, err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("payfip: %s: %w: answer larger than %d bytes", op, ErrNotSOAP, maxAnswer)
	}
	f, err := decodeResponse(resp.StatusCode, body)
	if err != nil {
		if fault, ok := asFault(err); ok {
			fault.Op = op
			return nil, fault
		}
		// err already starts with "payfip: "; add what helps to diagnose.
		return nil, fmt.Errorf("%w (%s, Content-Type %q)", err, op, resp.Header.Get("Content-Type"))
	}
	return f, nil
}

// transportError tells a timeout apart from other network failures.
func transportError(op string, err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return fmt.Errorf("payfip: %s: %w: %w", op, ErrTimeout, err)
	}
	return fmt.Errorf("payfip: %s: %w: %w", op, ErrTransport, err)
}

// ValidIdOp reports whether s looks like an idOp (a UUID in practice): 1 to
// 64 letters, digits or dashes, safe to put in a URL and a log line.
func ValidIdOp(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// WSPaymentURL is where the browser goes to pay idOp, base being e.g.
// https://www.payfip.gouv.fr/tpa/paiementws.web.
func WSPaymentURL(base, idOp string) string {
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "idop=" + url.QueryEscape(idOp)
}

// ParseNotification reads the idOp PayFiP POSTs to urlnotif (form field
// idOp). It also reads the browser return urlredirect?idop=…, since both
// only carry the idOp; names are matched case-insensitively. The value is
// only a hint: ask RecupererDetailPaiementSecurise for the result.
func ParseNotification(r *http.Request) (string, error) {
	if err := r.ParseForm(); err != nil {
		return "", fmt.Errorf("payfip: notification: %w", err)
	}
	idOp, err := lookupFold(r.Form, "idop")
	if err != nil {
		return "", err
	}
	if idOp == "" {
		return "", errors.New("payfip: notification: missing idOp")
	}
	if !ValidIdOp(idOp) {
		return "", fmt.Errorf("payfip: notification: invalid idOp %q", idOp)
	}
	return idOp, nil
}
