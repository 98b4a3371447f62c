package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"portail/pkg/config"
	"portail/pkg/payfip/sim"
)

// PayFiPCallbackAddr is where the simulator's server-side calls (classic
// callback to urlcl, WS notification) come from: loopback, but not the
// address a browser or curl on this machine uses by default (Linux routes
// all of 127.0.0.0/8 to the loopback interface). The portal thus tells
// PayFiP's calls from the payer's by their source network, as in
// production.
const PayFiPCallbackAddr = "127.0.0.2"

// PayFiPCallbackNetworks is payfip.callback_networks for the simulator.
func PayFiPCallbackNetworks() []string { return []string{PayFiPCallbackAddr + "/32"} }

// PayFiPSimulator is the project's PayFiP stand-in served on loopback.
type PayFiPSimulator struct {
	URL string
	Sim *sim.Simulator
	srv *http.Server
}

// StartPayFiP serves the simulator on addr ("127.0.0.1:0" picks a port).
func StartPayFiP(addr string) (*PayFiPSimulator, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := sim.New(sim.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), HTTPClient: callbackClient()})
	p := &PayFiPSimulator{
		URL: "http://" + l.Addr().String(),
		Sim: s,
		srv: &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second},
	}
	go func() {
		if err := p.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Println("devenv: PayFiP simulator:", err)
		}
	}()
	return p, nil
}

// Configure points the portal's PayFiP endpoints at the simulator and
// trusts its callback address (only that one) for classic results.
func (p *PayFiPSimulator) Configure(cfg *config.Config) {
	cfg.PayFiP.ClassicURL = p.URL + "/tpa/paiement.web"
	cfg.PayFiP.WSPaymentURL = p.URL + "/tpa/paiementws.web"
	cfg.PayFiP.SOAPURL = p.URL + "/tpa/services/securite"
	cfg.PayFiP.CallbackNetworks = PayFiPCallbackNetworks()
}

// callbackClient is the simulator's client for its calls to the portal: it
// dials from PayFiPCallbackAddr. Host names under .localhost (the demo
// communes) go to 127.0.0.1: they may resolve to ::1 too, which a socket
// bound to an IPv4 address cannot reach, or not resolve at all.
func callbackClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(PayFiPCallbackAddr)}}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				if host, port, err := net.SplitHostPort(addr); err == nil && isLocalhost(host) {
					addr = net.JoinHostPort("127.0.0.1", port)
				}
				return dialer.DialContext(ctx, "tcp4", addr)
			},
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     30 * time.Second,
		},
	}
}

func isLocalhost(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// Close stops the simulator.
func (p *PayFiPSimulator) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p.Sim.Close()
	if err := p.srv.Shutdown(ctx); err != nil {
		return p.srv.Close()
	}
	return nil
}
