package auth

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/alexedwards/argon2id"
)

// MaxPasswordBytes is the size above which a password is refused before any
// hashing (a 1 MB password must not cost a 1 MB argon2 input).
const MaxPasswordBytes = 1024

// HashParams are argon2id's parameters.
type HashParams struct {
	Memory      uint32 // KiB
	Iterations  uint32
	Parallelism uint8
	SaltLength  uint32
	KeyLength   uint32
}

// DefaultHashParams are OWASP's minimum for argon2id: m=19 MiB, t=2, p=1.
func DefaultHashParams() HashParams {
	return HashParams{Memory: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

// Hasher hashes and verifies passwords with argon2id. A semaphore bounds the
// hashes running at once so that a burst of logins cannot exhaust memory
// (each hash holds Memory KiB).
type Hasher struct {
	params HashParams
	sem    chan struct{}
	// dummy is a hash of a random password made with params, which
	// DummyVerify checks exactly as Verify checks a stored hash.
	dummy string
	// accounting, read by tests and metrics
	active        atomic.Int64
	peak          atomic.Int64
	verifications atomic.Int64
}

// NewHasher returns a hasher with DefaultHashParams running at most
// maxConcurrent hashes at once (at least 1).
func NewHasher(maxConcurrent int) *Hasher {
	return NewHasherWithParams(maxConcurrent, DefaultHashParams())
}

// NewHasherWithParams is NewHasher with explicit parameters (tests use cheap
// ones; changing them makes Verify report needsRehash for older hashes).
func NewHasherWithParams(maxConcurrent int, p HashParams) *Hasher {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	h := &Hasher{params: p, sem: make(chan struct{}, maxConcurrent)}
	secret := make([]byte, 32)
	rand.Read(secret) // never fails (crypto/rand)
	dummy, err := argon2id.CreateHash(base64.RawStdEncoding.EncodeToString(secret), h.argonParams())
	if err != nil {
		panic("auth: dummy password hash: " + err.Error()) // only from crypto/rand
	}
	h.dummy = dummy
	return h
}

// PeakInFlight is the highest number of hashes that ran at the same time.
func (h *Hasher) PeakInFlight() int { return int(h.peak.Load()) }

// Verifications counts the argon2 verifications run (Verify and
// DummyVerify alike).
func (h *Hasher) Verifications() int64 { return h.verifications.Load() }

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting for a password hash slot: %w", ctx.Err())
	}
	n := h.active.Add(1)
	for {
		p := h.peak.Load()
		if n <= p || h.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return nil
}

func (h *Hasher) release() {
	h.active.Add(-1)
	<-h.sem
}

func (h *Hasher) argonParams() *argon2id.Params {
	return &argon2id.Params{
		Memory:      h.params.Memory,
		Iterations:  h.params.Iterations,
		Parallelism: h.params.Parallelism,
		SaltLength:  h.params.SaltLength,
		KeyLength:   h.params.KeyLength,
	}
}

// errPasswordTooLong is returned by Hash for inputs over MaxPasswordBytes.
var errPasswordTooLong = errors.New("auth: password longer than 1 KiB")

// Hash returns the PHC-encoded argon2id hash of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if len(pw) > MaxPasswordBytes {
		return "", errPasswordTooLong
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	enc, err := argon2id.CreateHash(pw, h.argonParams())
	if err != nil {
		return "", fmt.Errorf("auth: hash: %w", err)
	}
	return enc, nil
}

// Verify tells whether pw matches encoded, and whether encoded was made with
// other parameters than the current ones (the caller then stores a new hash).
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (ok, needsRehash bool, err error) {
	match, p, err := h.check(ctx, pw, encoded)
	if err != nil || !match {
		return false, false, err
	}
	cur := h.params
	needsRehash = p.Memory != cur.Memory || p.Iterations != cur.Iterations ||
		p.Parallelism != cur.Parallelism || p.KeyLength != cur.KeyLength || p.SaltLength != cur.SaltLength
	return true, needsRehash, nil
}

// DummyVerify costs what Verify costs, for unknown emails and accounts
// without a password, so that timing does not tell them apart: it verifies
// pw against a hash made with the current parameters, by the same code.
func (h *Hasher) DummyVerify(ctx context.Context, pw string) error {
	_, _, err := h.check(ctx, pw, h.dummy)
	return err
}

// check is the one argon2 verification of Verify and DummyVerify.
func (h *Hasher) check(ctx context.Context, pw, encoded string) (bool, *argon2id.Params, error) {
	if len(pw) > MaxPasswordBytes {
		return false, nil, nil
	}
	if err := h.acquire(ctx); err != nil {
		return false, nil, err
	}
	defer h.release()
	h.verifications.Add(1)
	match, p, err := argon2id.CheckHash(pw, encoded)
	if err != nil {
		return false, nil, fmt.Errorf("auth: verify: %w", err)
	}
	return match, p, nil
}
