package account

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/db"
)

// Login throttling, stored in PostgreSQL so that every app instance sees the
// same counters.
//
// Failures are counted per account email (whether or not an account has it,
// so that throttling reveals nothing) and per client IP (IPv6 per /64), in a
// fixed one-hour window that starts at the first failure. After the free
// failures, each failure imposes a delay before the next attempt, doubling
// from 1 s up to 30 s.
//
// Per account, at most 100 failures are counted per window; once reached,
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
	throttleWindow      = time.Hour
	accountMaxFailures  = 100
	accountFreeFailures = 3
	ipFreeFailures      = 10
	maxLoginDelay       = 30 * time.Second
)

const (
	kindAccount = "account"
	kindIP      = "ip"
)

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
	if r.Kind == kindAccount {
		if r.Failures >= accountMaxFailures {
			return r.WindowEnd.Sub(now)
		}
		free = accountFreeFailures
	}
	next := r.LastFailureAt.Add(failureDelay(r.Failures, free))
	if now.Before(next) {
		return next.Sub(now)
	}
	return 0
}

// ipKey normalizes a client IP; IPv6 clients are counted per /64, which one
// subscriber usually holds entirely.
func ipKey(ip string) string {
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

type throttleKey struct{ kind, key string }

func throttleKeys(email, ip string) []throttleKey {
	keys := []throttleKey{{kindAccount, NormalizeEmail(email)}}
	if ip != "" {
		keys = append(keys, throttleKey{kindIP, ipKey(ip)})
	}
	return keys
}

// LoginDelay is how long attempts for this email from this IP must wait
// (0: allowed now).
func (s *Service) LoginDelay(ctx context.Context, tenantID int64, email, ip string) (time.Duration, error) {
	now := s.now()
	var worst time.Duration
	for _, k := range throttleKeys(email, ip) {
		var r throttleRow
		err := s.DB.GetContext(ctx, &r, `SELECT kind, window_end, failures, last_failure_at FROM login_throttle
			WHERE tenant_id = $1 AND kind = $2 AND key = $3`, tenantID, k.kind, k.key)
		if err != nil {
			if isNoRows(err) {
				continue
			}
			return 0, fmt.Errorf("account: login delay: %w", err)
		}
		worst = max(worst, r.wait(now))
	}
	return worst, nil
}

// reserveLoginAttempt counts an attempt as a failure, unless it must wait:
// then it returns the wait and counts nothing.
func (s *Service) reserveLoginAttempt(ctx context.Context, tenantID int64, email, ip string) (time.Duration, error) {
	now := s.now()
	keys := throttleKeys(email, ip)
	var wait time.Duration
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		rows := make([]throttleRow, len(keys))
		// Same lock order everywhere (account, then IP): no deadlock.
		for i, k := range keys {
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_throttle (tenant_id, kind, key, window_end, failures, last_failure_at)
				VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING`, tenantID, k.kind, k.key, now.Add(throttleWindow), now); err != nil {
				return fmt.Errorf("account: throttle: %w", err)
			}
			if err := tx.GetContext(ctx, &rows[i], `SELECT kind, window_end, failures, last_failure_at FROM login_throttle
				WHERE tenant_id = $1 AND kind = $2 AND key = $3 FOR UPDATE`, tenantID, k.kind, k.key); err != nil {
				return fmt.Errorf("account: throttle: %w", err)
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
				return fmt.Errorf("account: throttle: %w", err)
			}
		}
		return nil
	})
	return wait, err
}

// loginSucceeded clears the account's counter and takes back the attempt
// counted against the IP.
func loginSucceeded(ctx context.Context, x sqlx.ExecerContext, tenantID int64, email, ip string) error {
	if err := clearAccountThrottle(ctx, x, tenantID, email); err != nil {
		return err
	}
	if ip == "" {
		return nil
	}
	if _, err := x.ExecContext(ctx, `UPDATE login_throttle SET failures = greatest(failures - 1, 0)
		WHERE tenant_id = $1 AND kind = 'ip' AND key = $2`, tenantID, ipKey(ip)); err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	return nil
}

func clearAccountThrottle(ctx context.Context, x sqlx.ExecerContext, tenantID int64, email string) error {
	if _, err := x.ExecContext(ctx, `DELETE FROM login_throttle WHERE tenant_id = $1 AND kind = 'account' AND key = $2`,
		tenantID, NormalizeEmail(email)); err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	return nil
}

// Allow is a fixed-window rate limiter shared by all instances: it counts a
// hit on (bucket, key) and tells whether it is within limit for the current
// window. Hits over the limit do not extend the window.
func (s *Service) Allow(ctx context.Context, tenantID int64, bucket, key string, limit int, window time.Duration) (bool, error) {
	return allow(ctx, s.DB, s.now(), tenantID, bucket, key, limit, window)
}

func allow(ctx context.Context, q sqlx.QueryerContext, now time.Time, tenantID int64, bucket, key string, limit int, window time.Duration) (bool, error) {
	if limit <= 0 || window <= 0 {
		return false, errors.New("account: rate limit needs a positive limit and window")
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
		return false, fmt.Errorf("account: rate limit: %w", err)
	}
	return hits <= limit, nil
}
