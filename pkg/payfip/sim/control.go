package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Values of ControlOptions.Fault.
const (
	FaultNone         = ""
	Fault999          = "999"          // TechDysfonctionnementErreur, code 999
	FaultTimeout      = "timeout"      // the call hangs (Options.Hang)
	FaultIndisponible = "indisponible" // TechIndisponibiliteErreur
	FaultHTML         = "html"         // a proxy's HTML error page (502)
)

// ControlOptions is how tests steer the simulator (POST /_sim/control takes
// the same JSON; fields left out keep their value).
type ControlOptions struct {
	// ForceOutcome ("P", "V", "R", "Z", "A") is applied to the next payment
	// whatever button is pressed, then cleared; "" = the button decides.
	ForceOutcome string `json:"force_outcome"`
	// NotifyDelayMS delays the first call to urlnotif/urlcl (real time).
	NotifyDelayMS int `json:"notify_delay_ms"`
	// NotifyRetries is how many more attempts follow a failed delivery
	// (network error or non-2xx answer).
	NotifyRetries int `json:"notify_retries"`
	// NotifyRetryDelayMS is the pause between attempts.
	NotifyRetryDelayMS int `json:"notify_retry_delay_ms"`
	// DropNotifications skips the server-side calls (as seen in qualification);
	// the browser is still redirected.
	DropNotifications bool `json:"drop_notifications"`
	// Fault is injected into the next FaultCount SOAP calls: "999",
	// "timeout", "indisponible", "html" or "" for none.
	Fault string `json:"fault"`
	// FaultCount is how many SOAP calls get Fault (0 with a Fault means 1).
	FaultCount int `json:"fault_count"`
	// ClassicCallbackMethod is how urlcl is called server-side: "GET"
	// (default, parameters in the query) or "POST" (form body).
	ClassicCallbackMethod string `json:"classic_callback_method"`
}

// DefaultControl is the state after New and Reset.
func DefaultControl() ControlOptions {
	return ControlOptions{
		NotifyRetries:         2,
		NotifyRetryDelayMS:    500,
		ClassicCallbackMethod: http.MethodGet,
	}
}

func (c *ControlOptions) normalize() error {
	c.ForceOutcome = strings.ToUpper(strings.TrimSpace(c.ForceOutcome))
	switch c.ForceOutcome {
	case "", "P", "V", "R", "Z", "A":
	default:
		return fmt.Errorf("force_outcome must be P, V, R, Z, A or empty, not %q", c.ForceOutcome)
	}
	c.Fault = strings.ToLower(strings.TrimSpace(c.Fault))
	switch c.Fault {
	case FaultNone:
		c.FaultCount = 0
	case Fault999, FaultTimeout, FaultIndisponible, FaultHTML:
		if c.FaultCount <= 0 {
			c.FaultCount = 1
		}
	default:
		return fmt.Errorf("fault must be 999, timeout, indisponible, html or empty, not %q", c.Fault)
	}
	if c.NotifyDelayMS < 0 || c.NotifyRetries < 0 || c.NotifyRetryDelayMS < 0 {
		return fmt.Errorf("delays and retries must not be negative")
	}
	c.ClassicCallbackMethod = strings.ToUpper(strings.TrimSpace(c.ClassicCallbackMethod))
	switch c.ClassicCallbackMethod {
	case "":
		c.ClassicCallbackMethod = http.MethodGet
	case http.MethodGet, http.MethodPost:
	default:
		return fmt.Errorf("classic_callback_method must be GET or POST, not %q", c.ClassicCallbackMethod)
	}
	return nil
}

// Control replaces the control state.
func (s *Simulator) Control(c ControlOptions) error {
	if err := c.normalize(); err != nil {
		return fmt.Errorf("payfip sim: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ctrl = c
	return nil
}

// ControlState returns the current control state (FaultCount counts down).
func (s *Simulator) ControlState() ControlOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ctrl
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func jsonError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func (s *Simulator) getControl(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.ControlState())
}

// postControl applies a partial update: absent fields keep their value.
func (s *Simulator) postControl(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	c := s.ctrl
	s.mu.Unlock()
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		jsonError(w, http.StatusBadRequest, err)
		return
	}
	if err := s.Control(c); err != nil {
		jsonError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusOK, s.ControlState())
}

func (s *Simulator) listPayments(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Payments())
}

func (s *Simulator) postReset(w http.ResponseWriter, r *http.Request) {
	s.Reset()
	writeJSON(w, http.StatusOK, map[string]string{"status": "reset"})
}

type clockState struct {
	Now time.Time `json:"now"`
}

func (s *Simulator) getClock(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, clockState{Now: s.Now()})
}

// postClock moves the clock for browser tests, which cannot call SetNow:
// {"now": "2025-01-02T15:04:05+01:00"} and/or {"advance": "16m"}.
func (s *Simulator) postClock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Now     *time.Time `json:"now"`
		Advance string     `json:"advance"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		jsonError(w, http.StatusBadRequest, err)
		return
	}
	var d time.Duration
	if req.Advance != "" {
		var err error
		if d, err = time.ParseDuration(req.Advance); err != nil {
			jsonError(w, http.StatusBadRequest, err)
			return
		}
	}
	if req.Now != nil {
		s.SetNow(*req.Now)
	}
	s.Advance(d)
	writeJSON(w, http.StatusOK, clockState{Now: s.Now()})
}
