package devenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"portail/pkg/config"
	"portail/pkg/payfip/sim"
)

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
	s := sim.New(sim.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

// Configure points the portal's PayFiP endpoints at the simulator.
func (p *PayFiPSimulator) Configure(cfg *config.Config) {
	cfg.PayFiP.ClassicURL = p.URL + "/tpa/paiement.web"
	cfg.PayFiP.WSPaymentURL = p.URL + "/tpa/paiementws.web"
	cfg.PayFiP.SOAPURL = p.URL + "/tpa/services/securite"
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
