package auth

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/db"
)

// Login throttling, stored in PostgreSQL (login_throttle) so that every app
// instance sees the same counters.
//
// Failures are counted per principal key, the login email (whether or not
// a principal has it, so that throttling reveals nothing), and per client
// IP (IPv6 per /64), in a fixed one-hour window that starts at the first
// failure. After the free
// failures, each failure imposes a delay before the next attempt, doubling
// from 1 s up to 30 s.
//
// Per key, at most 100 failures are counted per window; once reached,
// attempts for that email are refused until the window ends, even with the
// right password. This is deliberately not an open-ended lockout: the
// window's end is fixed when it opens and refused attempts are neither
// counted nor extend it, so an attacker can block an account for at most
// the rest of one hour per 100 guesses (which take ~45 min given the
// delays), and the owner can still get in through "Oublié ?": a password set
// with a reset link clears the counter. A successful login clears the
// account's counter too.
//
// An attempt is counted as a failure before the password is checked (and
// taken back on success), so parallel requests cannot slip more guesses
// through than the delays allow.
const (
	throttleWindow        = time.Hour
	principalMaxFailures  = 100
	principalFreeFailures = 3
	ipFreeFailures        = 10
	maxLoginDelay         = 30 * time.Second
)

// ThrottleKinds are the values of login_throttle.kind under which one kind
// of principal counts its failures: residents and staff count apart, so
// that their keys never collide. Code constants only.
type ThrottleKinds struct {
	Principal string // e.g. "account"
	IP        string // e.g. "ip"
}

// Throttle counts login failures of one kind of principal.
type Throttle struct {
	DB    *sqlx.DB
	Kinds ThrottleKinds
	Now   func() time.Time
}

func (t *Throttle) now() time.Time { return Clock(t.Now) }

// failureDelay is the wait imposed after n failures: none for the first
// free ones, then 1 s, 2 s, 4 s… up to 30 s.
func failureDelay(n, free int) time.Duration {
	if n <= free {
		return 0
	}
	shift := n - free - 1
	if shift >= 5 { // 1s<<5 = 32 s > 30 s; also avoids overflow
		return maxLoginDelay
	}
	return min(time.Second<<shift, maxLoginDelay)
}

type throttleRow struct {
	principal     bool
	Kind          string    `db:"kind"`
	WindowEnd     time.Time `db:"window_end"`
	Failures      int       `db:"failures"`
	LastFailureAt time.Time `db:"last_failure_at"`
}

// wait is how long before the next attempt is allowed.
func (r throttleRow) wait(now time.Time) time.Duration {
	if !now.Before(r.WindowEnd) {
		return 0 // window over: counter starts again
	}
	free := ipFreeFailures
	if r.principal {
		if r.Failures >= principalMaxFailures {
			return r.WindowEnd.Sub(now)
		}
		free = principalFreeFailures
	}
	next := r.LastFailureAt.Add(failureDelay(r.Failures, free))
	if now.Before(next) {
		return next.Sub(now)
	}
	return 0
}

// IPKey normalizes a client IP; IPv6 clients are counted per /64, which one
// subscriber usually holds entirely.
func IPKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		if len(ip) > 64 {
			ip = ip[:64]
		}
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

type throttleKey struct {
	principal bool
	kind, key string
}

func (t *Throttle) keys(principalKey, ip string) []throttleKey {
	keys := []throttleKey{{true, t.Kinds.Principal, principalKey}}
	if ip != "" {
		keys = append(keys, throttleKey{false, t.Kinds.IP, IPKey(ip)})
	}
	return keys
}

// Delay is how long attempts for principalKey from ip must wait (0:
// allowed now).
func (t *Throttle) Delay(ctx context.Context, tenantID int64, principalKey, ip string) (time.Duration, error) {
	now := t.now()
	var worst time.Duration
	for _, k := range t.keys(principalKey, ip) {
		r := throttleRow{principal: k.principal}
		err := t.DB.GetContext(ctx, &r, `SELECT kind, window_end, failures, last_failure_at FROM login_throttle
			WHERE tenant_id = $1 AND kind = $2 AND key = $3`, tenantID, k.kind, k.key)
		if err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			return 0, fmt.Errorf("auth: login delay: %w", err)
		}
		worst = max(worst, r.wait(now))
	}
	return worst, nil
}

// Reserve counts an attempt as a failure, unless it must wait: then it
// returns the wait and counts nothing. Call Succeeded when the password
// proves right.
func (t *Throttle) Reserve(ctx context.Context, tenantID int64, principalKey, ip string) (time.Duration, error) {
	now := t.now()
	keys := t.keys(principalKey, ip)
	var wait time.Duration
	err := db.InTx(ctx, t.DB, func(tx *sqlx.Tx) error {
		rows := make([]throttleRow, len(keys))
		// Same lock order everywhere (principal, then IP): no deadlock.
		for i, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_throttle (tenant_id, kind, key, window_end, failures, last_failure_at)
				VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING`, tenantID, k.kind, k.key, now.Add(throttleWindow), now); err != nil {
				return fmt.Errorf("auth: throttle: %w", err)
			}
			rows[i].principal = k.principal
			if err := tx.GetContext(ctx, &rows[i], `SELECT kind, window_end, failures, last_failure_at FROM login_throttle
				WHERE tenant_id = $1 AND kind = $2 AND key = $3 FOR UPDATE`, tenantID, k.kind, k.key); err != nil {
				return fmt.Errorf("auth: throttle: %w", err)
			}
			wait = max(wait, rows[i].wait(now))
		}
		if wait > 0 {
			return nil
		}
		for i, k := range keys {
			r := rows[i]
			if !now.Before(r.WindowEnd) {
				r.WindowEnd, r.Failures = now.Add(throttleWindow), 0
			}
			if _, err := tx.ExecContext(ctx, `UPDATE login_throttle SET window_end = $4, failures = $5, last_failure_at = $6
				WHERE tenant_id = $1 AND kind = $2 AND key = $3`, tenantID, k.kind, k.key, r.WindowEnd, r.Failures+1, now); err != nil {
				return fmt.Errorf("auth: throttle: %w", err)
			}
		}
		return nil
	})
	return wait, err
}

// Succeeded clears the principal's counter and takes back the attempt
// counted against the IP, through x.
func (t *Throttle) Succeeded(ctx context.Context, x sqlx.ExecerContext, tenantID int64, principalKey, ip string) error {
	if err := t.Clear(ctx, x, tenantID, principalKey); err != nil {
		return err
	}
	if ip == "" {
		return nil
	}
	if _, err := x.ExecContext(ctx, `UPDATE login_throttle SET failures = greatest(failures - 1, 0)
		WHERE tenant_id = $1 AND kind = $2 AND key = $3`, tenantID, t.Kinds.IP, IPKey(ip)); err != nil {
		return fmt.Errorf("auth: throttle: %w", err)
	}
	return nil
}

// Release takes back one attempt counted by Reserve, for the principal
// and the IP, through x, without clearing the counters: a right password
// whose second factor is still due is no failure, but must not wipe the
// failures of second-factor guesses either.
func (t *Throttle) Release(ctx context.Context, x sqlx.ExecerContext, tenantID int64, principalKey, ip string) error {
	for _, k := range t.keys(principalKey, ip) {
		if _, err := x.ExecContext(ctx, `UPDATE login_throttle SET failures = greatest(failures - 1, 0)
			WHERE tenant_id = $1 AND kind = $2 AND key = $3`, tenantID, k.kind, k.key); err != nil {
			return fmt.Errorf("auth: throttle: %w", err)
		}
	}
	return nil
}

// Clear forgets the principal's failures (a password set through a reset
// link), through x.
func (t *Throttle) Clear(ctx context.Context, x sqlx.ExecerContext, tenantID int64, principalKey string) error {
	if _, err := x.ExecContext(ctx, `DELETE FROM login_throttle WHERE tenant_id = $1 AND kind = $2 AND key = $3`,
		tenantID, t.Kinds.Principal, principalKey); err != nil {
		return fmt.Errorf("auth: throttle: %w", err)
	}
	return nil
}

// PurgeThrottling deletes the counters and rate limits whose window ended,
// of every commune and principal.
func PurgeThrottling(ctx context.Context, x sqlx.ExecerContext, now time.Time) error {
	for _, q := range []string{
		`DELETE FROM login_throttle WHERE window_end < $1`,
		`DELETE FROM rate_limits WHERE window_end < $1`,
	} {
		if _, err := x.ExecContext(ctx, q, now); err != nil {
			return fmt.Errorf("auth: purge: %w", err)
		}
	}
	return nil
}

// Allow is a fixed-window rate limiter shared by all instances (table
// rate_limits): it counts a hit on (bucket, key) through q (a transaction
// or the DB) and tells whether it is within limit for the current window.
// Hits over the limit do not extend the window. Buckets are code
// constants, distinct per principal ("reset", "staff_reset"…).
func Allow(ctx context.Context, q sqlx.QueryerContext, now time.Time, tenantID int64, bucket, key string, limit int, window time.Duration) (bool, error) {
	if limit <= 0 || window <= 0 {
		return false, errors.New("auth: rate limit needs a positive limit and window")
	}
	if len(key) > 320 {
		key = key[:320]
	}
	var hits int
	err := sqlx.GetContext(ctx, q, &hits, `INSERT INTO rate_limits (tenant_id, bucket, key, window_end, hits)
		VALUES ($1, $2, $3, $5, 1)
		ON CONFLICT (tenant_id, bucket, key) DO UPDATE SET
			hits = CASE WHEN rate_limits.window_end <= $4 THEN 1 ELSE least(rate_limits.hits + 1, 1000000000) END,
			window_end = CASE WHEN rate_limits.window_end <= $4 THEN EXCLUDED.window_end ELSE rate_limits.window_end END
		RETURNING hits`, tenantID, bucket, key, now, now.Add(window))
	if err != nil {
		return false, fmt.Errorf("auth: rate limit: %w", err)
	}
	return hits <= limit, nil
}
