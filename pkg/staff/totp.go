package staff

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portail/pkg/audit"
	"portail/pkg/auth"
	"portail/pkg/db"
	"portail/pkg/metrics"
	"portail/pkg/tenant"
)

// The second factor: TOTP (RFC 6238) as every authenticator app reads it,
// SHA-1, 6 digits, 30-second steps, one step of clock skew either way.
const (
	totpIssuer = "Portail des factures"
	totpPeriod = 30
	totpSkew   = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Skew: totpSkew, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// RecoveryCodes is how many one-time recovery codes an enrolment gives.
const RecoveryCodes = 10

// TOTPKey is a secret to enrol: shown as text and as a QR code (Key.Image)
// until a first code confirms it.
func TOTPKey(email, secret string) (*otp.Key, error) {
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ToUpper(secret))
	if err != nil {
		return nil, fmt.Errorf("staff: TOTP secret: %w", err)
	}
	return totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: email, Period: totpPeriod,
		Secret: raw, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// NewTOTPSecret makes a secret (base32) for an enrolment.
func NewTOTPSecret(email string) (string, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: totpIssuer, AccountName: email, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", fmt.Errorf("staff: TOTP secret: %w", err)
	}
	return k.Secret(), nil
}

// matchStep returns the time step whose code is code for secret at now
// (within the skew), or ok false.
func matchStep(secret, code string, now time.Time) (step int64, ok bool) {
	if len(code) != 6 {
		return 0, false
	}
	for d := -totpSkew; d <= totpSkew; d++ {
		at := now.Add(time.Duration(d*totpPeriod) * time.Second)
		want, err := totp.GenerateCodeCustom(secret, at, totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			return at.Unix() / totpPeriod, true
		}
	}
	return 0, false
}

// normalizeCode drops the spaces and dashes people type in codes.
func normalizeCode(code string) string {
	return strings.ToLower(strings.NewReplacer(" ", "", "-", "", "\t", "").Replace(strings.TrimSpace(code)))
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// ConfirmTOTP enrols secret as the user's second factor once code proves
// their app holds it, and returns new recovery codes, shown once. The
// code's step is recorded as used: it cannot serve again.
func (s *Service) ConfirmTOTP(ctx context.Context, t *tenant.Tenant, userID int64, secret, code string) ([]string, error) {
	ctx = asStaff(ctx, userID)
	step, ok := matchStep(secret, normalizeCode(code), s.now())
	if !ok {
		if err := audit.Record(ctx, s.DB, t.ID, "staff.totp.enrolment_failed", userObject(userID), nil); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCode
	}
	var codes []string
	err := db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE staff_users SET totp_secret = $2, totp_enrolled_at = $3, totp_last_step = $4, updated_at = $3
			WHERE id = $1 AND totp_secret IS NULL`, userID, secret, s.now(), step)
		if err != nil {
			return fmt.Errorf("staff: enrol TOTP: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrAlreadyEnrolled
		}
		if codes, err = replaceRecoveryCodes(ctx, tx, userID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, "staff.totp.enrolled", userObject(userID), nil)
	})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// VerifySecondFactor checks the second factor of a user who gave their
// password: a TOTP code of a step after the last one accepted (a code is
// good once: replayed within its window it is refused), or an unused
// recovery code (then used up). Failures are throttled with the login's.
func (s *Service) VerifySecondFactor(ctx context.Context, t *tenant.Tenant, userID int64, code, ip string) error {
	ctx = asStaff(audit.WithActor(ctx, audit.Actor{Kind: audit.KindAnonymous, IP: ipOr(ctx, ip)}), userID)
	c, err := loadCredentials(ctx, s.DB, t.ID, `u.id = $2`, userID)
	if err != nil {
		return err
	}
	wait, err := s.throttle().Reserve(ctx, t.ID, c.Email, ip)
	if err != nil {
		return err
	}
	if wait > 0 {
		return &auth.ThrottledError{RetryAfter: wait}
	}
	code = normalizeCode(code)
	var outcome error
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		action, used := "staff.second_factor.totp", false
		if isDigits(code) {
			used, err = useTOTP(ctx, tx, userID, code, s.now())
		} else {
			action = "staff.second_factor.recovery_code"
			used, err = useRecoveryCode(ctx, tx, userID, code, s.now())
		}
		if err != nil {
			return err
		}
		if !used {
			outcome = ErrInvalidCode
			return nil
		}
		if err := s.throttle().Succeeded(ctx, tx, t.ID, c.Email, ip); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, action, userObject(userID), nil)
	})
	if err != nil {
		return err
	}
	if outcome != nil {
		if err := audit.Record(ctx, s.DB, t.ID, "staff.second_factor.failed", userObject(userID), nil); err != nil {
			return err
		}
		s.Metrics.LoginFailed(metrics.WhoStaff)
	}
	return outcome
}

// useTOTP accepts code if it is the user's TOTP code of a step after the
// last accepted one, and records its step, under the row's lock: of two
// requests with the same code, one wins.
func useTOTP(ctx context.Context, tx *sqlx.Tx, userID int64, code string, now time.Time) (bool, error) {
	var row struct {
		Secret   *string `db:"totp_secret"`
		LastStep int64   `db:"totp_last_step"`
	}
	if err := tx.GetContext(ctx, &row, `SELECT totp_secret, totp_last_step FROM staff_users WHERE id = $1 FOR UPDATE`, userID); err != nil {
		return false, fmt.Errorf("staff: TOTP: %w", err)
	}
	if row.Secret == nil {
		return false, nil
	}
	step, ok := matchStep(*row.Secret, code, now)
	if !ok || step <= row.LastStep {
		return false, nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET totp_last_step = $2 WHERE id = $1`, userID, step); err != nil {
		return false, fmt.Errorf("staff: TOTP: %w", err)
	}
	return true, nil
}

// useRecoveryCode uses up one of the user's unused recovery codes.
func useRecoveryCode(ctx context.Context, tx *sqlx.Tx, userID int64, code string, now time.Time) (bool, error) {
	if len(code) != recoveryCodeLength {
		return false, nil
	}
	res, err := tx.ExecContext(ctx, `UPDATE staff_recovery_codes SET used_at = $3
		WHERE staff_user_id = $1 AND code_hash = $2 AND used_at IS NULL`, userID, auth.Hash(code), now)
	if err != nil {
		return false, fmt.Errorf("staff: recovery code: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Recovery codes: 10 letters and digits of base32 (50 bits), shown in two
// groups ("k3f9q-7mzp2").
const recoveryCodeLength = 10

func newRecoveryCode() (string, error) {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("staff: random: %w", err)
	}
	s := strings.ToLower(base32.StdEncoding.EncodeToString(b))[:recoveryCodeLength]
	return s, nil
}

// FormatRecoveryCode writes a code as it is shown: two groups of five.
func FormatRecoveryCode(code string) string {
	if len(code) != recoveryCodeLength {
		return code
	}
	return code[:5] + "-" + code[5:]
}

// replaceRecoveryCodes deletes the user's codes and makes new ones.
func replaceRecoveryCodes(ctx context.Context, tx *sqlx.Tx, userID int64) ([]string, error) {
	if _, err := tx.ExecContext(ctx, `DELETE FROM staff_recovery_codes WHERE staff_user_id = $1`, userID); err != nil {
		return nil, fmt.Errorf("staff: recovery codes: %w", err)
	}
	codes := make([]string, RecoveryCodes)
	hashes := make([][]byte, RecoveryCodes)
	for i := range codes {
		c, err := newRecoveryCode()
		if err != nil {
			return nil, err
		}
		codes[i], hashes[i] = FormatRecoveryCode(c), auth.Hash(c)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO staff_recovery_codes (staff_user_id, code_hash)
		SELECT $1, unnest($2::bytea[])`, userID, pq.Array(hashes)); err != nil {
		return nil, fmt.Errorf("staff: recovery codes: %w", err)
	}
	return codes, nil
}

// RecoveryCodesLeft counts the user's unused recovery codes.
func (s *Service) RecoveryCodesLeft(ctx context.Context, userID int64) (int, error) {
	var n int
	if err := s.DB.GetContext(ctx, &n, `SELECT count(*) FROM staff_recovery_codes WHERE staff_user_id = $1 AND used_at IS NULL`, userID); err != nil {
		return 0, fmt.Errorf("staff: recovery codes: %w", err)
	}
	return n, nil
}

// RegenerateRecoveryCodes replaces the user's recovery codes (the old ones
// stop working) and returns the new ones, shown once. The current password
// is required.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, t *tenant.Tenant, userID int64, password string) ([]string, error) {
	ctx = asStaff(ctx, userID)
	c, err := loadCredentials(ctx, s.DB, t.ID, `u.id = $2`, userID)
	if err != nil {
		return nil, err
	}
	if !c.TOTPEnrolled {
		return nil, ErrNotEnrolled
	}
	if err := s.confirmPassword(ctx, t, c, password); err != nil {
		return nil, err
	}
	var codes []string
	err = db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if codes, err = replaceRecoveryCodes(ctx, tx, userID); err != nil {
			return err
		}
		return audit.Record(ctx, tx, t.ID, "staff.recovery_codes.regenerated", userObject(userID), nil)
	})
	return codes, err
}

// DisableTOTP removes the user's second factor and recovery codes; the
// current password is required. An administrator (of any commune) must
// keep theirs: ErrAdminNeedsTOTP.
func (s *Service) DisableTOTP(ctx context.Context, t *tenant.Tenant, userID int64, password string) error {
	ctx = asStaff(ctx, userID)
	c, err := loadCredentials(ctx, s.DB, t.ID, `u.id = $2`, userID)
	if err != nil {
		return err
	}
	if !c.TOTPEnrolled {
		return ErrNotEnrolled
	}
	var admin bool
	if err := s.DB.GetContext(ctx, &admin, `SELECT EXISTS (SELECT 1 FROM staff_memberships
		WHERE staff_user_id = $1 AND role = 'admin' AND status = 'active')`, userID); err != nil {
		return fmt.Errorf("staff: disable TOTP: %w", err)
	}
	if admin {
		return ErrAdminNeedsTOTP
	}
	if err := s.confirmPassword(ctx, t, c, password); err != nil {
		return err
	}
	return db.InTx(ctx, s.DB, func(tx *sqlx.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE staff_users SET totp_secret = NULL, totp_enrolled_at = NULL, updated_at = $2
			WHERE id = $1`, userID, s.now()); err != nil {
			return fmt.Errorf("staff: disable TOTP: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM staff_recovery_codes WHERE staff_user_id = $1`, userID); err != nil {
			return fmt.Errorf("staff: disable TOTP: %w", err)
		}
		return audit.Record(ctx, tx, t.ID, "staff.totp.disabled", userObject(userID), nil)
	})
}
