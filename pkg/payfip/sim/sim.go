// Package sim is a local stand-in for PayFiP: the classic
// payment page, the SOAP service, the WS payment page with its notification,
// a clock tests can move, the nightly purge, and a JSON control endpoint
// under /_sim/. It is an http.Handler: the dev command serves it on its own
// port, tests mount it on httptest.
package sim

import (
	"context"
	"crypto/rand"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"portail/pkg/paris"
	"portail/pkg/payfip"
)

// Options configures a Simulator. Zero values are sensible defaults.
type Options struct {
	// Clock is the base clock (nil = time.Now); SetNow and Advance move the
	// simulator's time relative to it.
	Clock func() time.Time
	// HTTPClient calls urlnotif and urlcl (nil = a client with a 10 s timeout).
	HTTPClient *http.Client
	// Logger receives one line per notable event (nil = discard).
	Logger *slog.Logger
	// MaxMontantWS caps amounts in WS mode, in cents (0 = 100 000 €).
	MaxMontantWS int64
	// MaxMontantClassic caps amounts in classic mode, in cents (0 = 9 999,99 €).
	MaxMontantClassic int64
	// Hang is how long a SOAP call hangs under the "timeout" fault, in real
	// time (0 = 2 minutes); it ends early when the client gives up.
	Hang time.Duration
}

// Payment states, as listed by /_sim/payments.
const (
	StateCreated    = "created"     // WS: idOp issued, page not opened yet
	StateInProgress = "in_progress" // the payer is on the payment page
	StateDone       = "done"        // a button was pressed; result known
	StatePurged     = "purged"      // removed by the nightly purge: P1
)

// Delivery is one attempt to call urlnotif (WS) or urlcl (classic).
type Delivery struct {
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"` // real time
	Method  string    `json:"method"`
	URL     string    `json:"url"`
	Status  int       `json:"status,omitempty"`
	Error   string    `json:"error,omitempty"`
	Dropped bool      `json:"dropped,omitempty"`
}

// PaymentInfo describes a payment for tests and for /_sim/payments.
type PaymentInfo struct {
	ID          string      `json:"id"` // the idOp in WS mode
	Mode        payfip.Mode `json:"mode"`
	State       string      `json:"state"`
	NumCli      string      `json:"numcli"`
	Exer        string      `json:"exer"`
	RefDet      string      `json:"refdet"`
	Montant     int64       `json:"montant"`
	Mel         string      `json:"mel"`
	Objet       string      `json:"objet,omitempty"`
	Saisie      string      `json:"saisie"`
	URLCl       string      `json:"urlcl,omitempty"`
	URLNotif    string      `json:"urlnotif,omitempty"`
	URLRedirect string      `json:"urlredirect,omitempty"`
	ResultTrans string      `json:"resultrans,omitempty"`
	NumAuto     string      `json:"numauto,omitempty"`
	DatTrans    string      `json:"dattrans,omitempty"`
	HeurTrans   string      `json:"heurtrans,omitempty"`
	CreatedAt   time.Time   `json:"created_at"` // simulator time
	OpenedAt    *time.Time  `json:"opened_at,omitempty"`
	DoneAt      *time.Time  `json:"done_at,omitempty"`
	Deliveries  []Delivery  `json:"deliveries,omitempty"`
}

// Simulator is the fake PayFiP. Create it with New; Close it to stop
// pending notifications.
type Simulator struct {
	base       func() time.Time
	client     *http.Client
	log        *slog.Logger
	maxWS      int64
	maxClassic int64
	hang       time.Duration
	paris      *time.Location
	pages      *template.Template
	mux        *http.ServeMux

	ctx    context.Context // canceled by Close: stops deliveries and hangs
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	closed   bool
	offset   time.Duration
	ctrl     ControlOptions
	payments map[string]*PaymentInfo
	order    []string
}

// New builds a simulator.
func New(opts Options) *Simulator {
	s := &Simulator{
		base:       opts.Clock,
		client:     opts.HTTPClient,
		log:        opts.Logger,
		maxWS:      opts.MaxMontantWS,
		maxClassic: opts.MaxMontantClassic,
		hang:       opts.Hang,
		ctrl:       DefaultControl(),
		payments:   make(map[string]*PaymentInfo),
	}
	if s.base == nil {
		s.base = time.Now
	}
	if s.client == nil {
		s.client = &http.Client{Timeout: 10 * time.Second}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxWS <= 0 {
		s.maxWS = payfip.MaxMontant
	}
	if s.maxClassic <= 0 {
		s.maxClassic = payfip.DefaultClassicMaxMontant
	}
	if s.hang <= 0 {
		s.hang = 2 * time.Minute
	}
	s.paris = paris.Location
	s.pages = parsePages()
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.mux = s.routes()
	return s
}

func (s *Simulator) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /tpa/paiement.web", s.classicPage)
	m.HandleFunc("POST /tpa/paiement.web", s.classicSubmit)
	m.HandleFunc("GET /tpa/paiementws.web", s.wsPage)
	m.HandleFunc("POST /tpa/paiementws.web", s.wsSubmit)
	m.HandleFunc("POST /tpa/services/securite", s.soap)
	m.HandleFunc("GET /tpa/services/securite", s.wsdl)
	m.HandleFunc("GET /_sim/control", s.getControl)
	m.HandleFunc("POST /_sim/control", s.postControl)
	m.HandleFunc("GET /_sim/payments", s.listPayments)
	m.HandleFunc("POST /_sim/reset", s.postReset)
	m.HandleFunc("GET /_sim/clock", s.getClock)
	m.HandleFunc("POST /_sim/clock", s.postClock)
	m.HandleFunc("GET /{$}", s.index)
	m.HandleFunc("/", s.notFound)
	return m
}

// ServeHTTP implements http.Handler.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Close stops pending notifications and hanging calls, and waits for them.
func (s *Simulator) Close() {
	s.mu.Lock()
	s.closed = true // no new background delivery after this point
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Now is the simulator's current time.
func (s *Simulator) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nowLocked()
}

func (s *Simulator) nowLocked() time.Time { return s.base().Add(s.offset) }

// SetNow moves the simulator's clock to t; it keeps running from there.
func (s *Simulator) SetNow(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset = t.Sub(s.base())
}

// Advance moves the simulator's clock forward by d (backward if negative).
func (s *Simulator) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Reset forgets every payment, restores the default controls and the clock.
func (s *Simulator) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.payments = make(map[string]*PaymentInfo)
	s.order = nil
	s.ctrl = DefaultControl()
	s.offset = 0
}

// Payments lists every payment (purge applied), oldest first.
func (s *Simulator) Payments() []PaymentInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	out := make([]PaymentInfo, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.payments[id].clone())
	}
	return out
}

// Payment returns one payment by id (idOp in WS mode).
func (s *Simulator) Payment(id string) (PaymentInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked()
	p, ok := s.payments[id]
	if !ok {
		return PaymentInfo{}, false
	}
	return p.clone(), true
}

func (p *PaymentInfo) clone() PaymentInfo {
	c := *p
	c.Deliveries = append([]Delivery(nil), p.Deliveries...)
	if p.OpenedAt != nil {
		t := *p.OpenedAt
		c.OpenedAt = &t
	}
	if p.DoneAt != nil {
		t := *p.DoneAt
		c.DoneAt = &t
	}
	return c
}

func (s *Simulator) addLocked(p *PaymentInfo) {
	s.payments[p.ID] = p
	s.order = append(s.order, p.ID)
	sort.SliceStable(s.order, func(i, j int) bool {
		return s.payments[s.order[i]].CreatedAt.Before(s.payments[s.order[j]].CreatedAt)
	})
}

// purgeLocked applies PayFiP's nightly job lazily: an idOp never taken to
// payment disappears at the first Europe/Paris midnight after its creation;
// a result stays readable for a year.
func (s *Simulator) purgeLocked() {
	now := s.nowLocked()
	for _, p := range s.payments {
		switch p.State {
		case StateCreated, StateInProgress:
			if p.Mode == payfip.ModeWS && !now.Before(s.nextMidnight(p.CreatedAt)) {
				p.State = StatePurged
				s.log.Info("payfip sim: idOp purged", "idop", p.ID)
			}
		case StateDone:
			if p.DoneAt != nil && now.Sub(*p.DoneAt) > 366*24*time.Hour {
				p.State = StatePurged
			}
		}
	}
}

func (s *Simulator) nextMidnight(t time.Time) time.Time {
	t = t.In(s.paris)
	y, m, d := t.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, s.paris)
}

// newUUID returns a random (version 4) UUID, PayFiP's idOp format.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newNumAuto returns a 6-digit authorisation number.
func newNumAuto() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	n := (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % 1_000_000
	return fmt.Sprintf("%06d", n)
}
