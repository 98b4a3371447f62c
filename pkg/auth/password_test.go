package auth

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
)

// randomPassword is a deterministic high-entropy password of n runes.
func randomPassword(n int, seed uint64) string {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-_!?"
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}

func policyReason(t *testing.T, err error) PolicyReason {
	t.Helper()
	if err == nil {
		return ""
	}
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("not a *PolicyError: %v", err)
	}
	if pe.Message == "" {
		t.Fatal("empty message")
	}
	return pe.Reason
}

func TestCheckPasswordLengths(t *testing.T) {
	ctxWords := []string{"MAIRIE DE SISTEC", "jean.dupont@example.fr"}
	cases := []struct {
		name string
		pw   string
		want PolicyReason
	}{
		{"0 chars", "", PolicyTooShort},
		{"7 chars", randomPassword(7, 1), PolicyTooShort},
		{"8 chars", "kQ7#vZp2", ""},
		{"8 multibyte runes", "éàçüößñø", ""},
		{"128 chars", randomPassword(128, 2), ""},
		{"129 chars", randomPassword(129, 3), PolicyTooLong},
		{"1025 bytes", randomPassword(1025, 4), PolicyTooLong},
		{"10^6 chars", randomPassword(1_000_000, 5), PolicyTooLong},
		// Refused on its size before its content is even read: the invalid
		// byte at the end would otherwise make it PolicyInvalid.
		{"10^6 bytes, invalid at the end", randomPassword(1_000_000, 6) + "\xff", PolicyTooLong},
		{"invalid UTF-8", "abc\xffdefghij", PolicyInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := policyReason(t, CheckPassword(c.pw, 8, ctxWords...))
			if got != c.want {
				t.Fatalf("CheckPassword(%d bytes) = %q, want %q", len(c.pw), got, c.want)
			}
		})
	}
	var pe *PolicyError
	errors.As(CheckPassword("abcdefg", 8), &pe)
	if pe.Message != "Le mot de passe doit contenir au moins 8 caractères." {
		t.Fatalf("message %q", pe.Message)
	}
	// The tenant's minimum applies above the floor, never below.
	errors.As(CheckPassword("kQ7#vZp2xw", 12), &pe)
	if pe.Reason != PolicyTooShort || pe.Message != "Le mot de passe doit contenir au moins 12 caractères." {
		t.Fatalf("tenant minimum: %+v", pe)
	}
	if policyReason(t, CheckPassword(randomPassword(7, 9), 5)) != PolicyTooShort {
		t.Fatal("a tenant minimum below 8 lowered the floor")
	}
}

func TestCheckPasswordCommonAndContext(t *testing.T) {
	words := []string{"MAIRIE DE SISTEC", "jean.dupont@example.fr"}
	for _, pw := range []string{"password", "Password1", "12345678", "azertyuiop", "motdepasse", "qwertyuiop", "iloveyou123", "aaaaaaaaaaaa"} {
		if got := policyReason(t, CheckPassword(pw, 8, words...)); got != PolicyCommon {
			t.Errorf("%q: got %q, want common", pw, got)
		}
	}
	for _, pw := range []string{"sistec2026!", "Mairie De Sistec", "jean.dupont@example.fr", "jean.dupont", "xx-Dupont-Zq8#", "SISTEC-kQ7#vZp2"} {
		if got := policyReason(t, CheckPassword(pw, 8, words...)); got != PolicyContext {
			t.Errorf("%q: got %q, want context", pw, got)
		}
	}
	for _, pw := range []string{goodPassword, "kQ7#vZp2", "la mer est calme ce matin"} {
		if err := CheckPassword(pw, 8, words...); err != nil {
			t.Errorf("%q refused: %v", pw, err)
		}
	}
	if Strength("password") >= Strength(goodPassword) || Strength(goodPassword) < 3 {
		t.Fatalf("strength: %d vs %d", Strength("password"), Strength(goodPassword))
	}
	if Strength(randomPassword(2000, 1)) != 0 {
		t.Fatal("out of bounds password has a strength")
	}
}

func TestHasherRoundTripAndNoTruncation(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(2)
	pw := randomPassword(128, 7)
	enc, err := h.Hash(ctx, pw)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoding %q", enc)
	}
	if ok, rehash, err := h.Verify(ctx, pw, enc); !ok || rehash || err != nil {
		t.Fatalf("verify: %v %v %v", ok, rehash, err)
	}
	// Never truncated nor case-folded.
	for _, other := range []string{pw[:127], strings.ToUpper(pw), strings.ToLower(pw), pw + "x"} {
		if other == pw {
			continue
		}
		if ok, _, _ := h.Verify(ctx, other, enc); ok {
			t.Fatalf("variant %q verified", other)
		}
	}
	if _, err := h.Hash(ctx, randomPassword(1025, 1)); err == nil {
		t.Fatal("hashed more than 1 KiB")
	}
	if ok, _, _ := h.Verify(ctx, randomPassword(1_000_000, 1), enc); ok {
		t.Fatal("verified 1 MB")
	}
	// Older parameters: valid, and flagged for rehash.
	old := NewHasherWithParams(1, cheapParams())
	oldEnc, _ := old.Hash(ctx, pw)
	if ok, rehash, err := h.Verify(ctx, pw, oldEnc); !ok || !rehash || err != nil {
		t.Fatalf("old params: ok=%v rehash=%v err=%v", ok, rehash, err)
	}
	if _, _, err := h.Verify(ctx, pw, "not-a-hash"); err == nil {
		t.Fatal("malformed hash accepted")
	}
}

// The dummy verification of unknown emails must cost what a real one costs:
// same argon2id parameters as a hash made now, through the same code (one
// verification each). Timing itself is measured by make bench.
func TestDummyVerifyUsesTheParametersOfARealHash(t *testing.T) {
	ctx := context.Background()
	for _, p := range []HashParams{DefaultHashParams(), cheapParams(), {Memory: 7168, Iterations: 5, Parallelism: 1, SaltLength: 16, KeyLength: 32}} {
		h := NewHasherWithParams(1, p)
		real, err := h.Hash(ctx, goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		want := &argon2id.Params{Memory: p.Memory, Iterations: p.Iterations, Parallelism: p.Parallelism, SaltLength: p.SaltLength, KeyLength: p.KeyLength}
		for name, enc := range map[string]string{"real": real, "dummy": h.dummy} {
			got, salt, key, err := argon2id.DecodeHash(enc)
			if err != nil {
				t.Fatal(err)
			}
			got.SaltLength, got.KeyLength = uint32(len(salt)), uint32(len(key))
			if *got != *want {
				t.Errorf("%s hash parameters %+v, want %+v", name, *got, *want)
			}
		}
		n := h.Verifications()
		if ok, _, err := h.Verify(ctx, "wrong password!", real); ok || err != nil {
			t.Fatalf("verify: %v %v", ok, err)
		}
		if err := h.DummyVerify(ctx, "wrong password!"); err != nil {
			t.Fatal(err)
		}
		if got := h.Verifications() - n; got != 2 {
			t.Errorf("%d argon2 verifications for one Verify and one DummyVerify, want 2", got)
		}
	}
	// Each hasher has its own random dummy (nothing to precompute against).
	if NewHasherWithParams(1, cheapParams()).dummy == NewHasherWithParams(1, cheapParams()).dummy {
		t.Error("two hashers share a dummy hash")
	}
}

func TestHasherBoundsConcurrency(t *testing.T) {
	const bound = 3
	h := NewHasher(bound)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			if _, err := h.Hash(ctx, randomPassword(12, uint64(i))); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if p := h.PeakInFlight(); p > bound || p < 1 {
		t.Fatalf("peak in-flight hashes %d, bound %d", p, bound)
	}
}

func TestHasherWaitHonoursContext(t *testing.T) {
	h := NewHasherWithParams(1, cheapParams())
	if err := h.acquire(context.Background()); err != nil { // hold the only slot
		t.Fatal(err)
	}
	defer h.release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Hash(ctx, goodPassword); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hash waited past its context: %v", err)
	}
	if _, _, err := h.Verify(ctx, goodPassword, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Verify: %v", err)
	}
	if err := h.DummyVerify(ctx, goodPassword); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DummyVerify: %v", err)
	}
}

const goodPassword = "Velo-Rouge-Sous-La-Pluie"

// cheapParams keep tests fast; tests about cost use DefaultHashParams.
func cheapParams() HashParams {
	return HashParams{Memory: 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}
