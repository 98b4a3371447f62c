package sim

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// delivery is a server-side call to the portal: the WS notification
// (POST idOp to urlnotif) or the classic callback (urlcl with the result).
type delivery struct {
	id     string // payment the attempts are recorded on
	method string
	target string
	form   url.Values
}

// deliver runs the attempts with the current controls (delay, retries,
// drop). With inlineFirst and no delay, the first attempt happens before
// deliver returns, so the classic page calls urlcl before sending the browser
// back; everything else runs in the background.
func (s *Simulator) deliver(d delivery, inlineFirst bool) {
	s.mu.Lock()
	c := s.ctrl
	if c.DropNotifications {
		s.recordLocked(d.id, Delivery{At: time.Now(), Method: d.method, URL: d.target, Dropped: true})
		s.mu.Unlock()
		s.log.Info("payfip sim: delivery dropped", "id", d.id, "url", d.target)
		return
	}
	s.mu.Unlock()

	attempts := 1 + c.NotifyRetries
	wait := time.Duration(c.NotifyDelayMS) * time.Millisecond
	retryWait := time.Duration(c.NotifyRetryDelayMS) * time.Millisecond
	first := 1
	if inlineFirst && wait == 0 {
		if s.attempt(d, 1) {
			return
		}
		first, wait = 2, retryWait
	}
	if first > attempts || !s.startBackground() {
		return
	}
	go func() {
		defer s.wg.Done()
		for n := first; n <= attempts; n++ {
			if !s.sleep(wait) || s.attempt(d, n) {
				return
			}
			wait = retryWait
		}
	}()
}

// startBackground registers a goroutine unless Close has begun.
func (s *Simulator) startBackground() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// sleep waits d in real time; false when the simulator is closing.
func (s *Simulator) sleep(d time.Duration) bool {
	if d <= 0 {
		return s.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// attempt makes one call and records it; true when the portal answered 2xx.
func (s *Simulator) attempt(d delivery, n int) bool {
	rec := Delivery{Attempt: n, At: time.Now(), Method: d.method, URL: d.target}
	req, err := s.newDeliveryRequest(s.ctx, d)
	if err == nil {
		var resp *http.Response
		resp, err = s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			rec.Status = resp.StatusCode
		}
	}
	if err != nil {
		rec.Error = err.Error()
	}
	s.mu.Lock()
	s.recordLocked(d.id, rec)
	s.mu.Unlock()
	ok := err == nil && rec.Status >= 200 && rec.Status < 300
	s.log.Info("payfip sim: delivery", "id", d.id, "attempt", n, "method", d.method,
		"url", d.target, "status", rec.Status, "err", rec.Error)
	return ok
}

func (s *Simulator) newDeliveryRequest(ctx context.Context, d delivery) (*http.Request, error) {
	if d.method == http.MethodGet {
		u, err := withParams(d.target, d.form)
		if err != nil {
			return nil, err
		}
		return http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.target, strings.NewReader(d.form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

func (s *Simulator) recordLocked(id string, d Delivery) {
	if p, ok := s.payments[id]; ok { // gone after a Reset: nothing to record on
		p.Deliveries = append(p.Deliveries, d)
	}
}

// withParams adds form to target's query, keeping the query it already has.
func withParams(target string, form url.Values) (string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", err
	}
	q := u.Query()
	for k, v := range form {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
