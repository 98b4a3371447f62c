package devenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
)

// Fixed dev credentials: the server only runs on loopback.
const (
	devS3AccessKey = "portail-dev"
	devS3SecretKey = "portail-dev-secret"
)

// S3Server is an S3-compatible server (gofakes3) whose buckets are
// directories under its data directory, so objects survive a restart.
type S3Server struct {
	URL       string // http://127.0.0.1:port
	AccessKey string
	SecretKey string

	srv *http.Server
}

// StartS3 serves S3 on addr (a loopback address such as "127.0.0.1:9000",
// or port 0 for any free port) with data under dir. Clients must use
// path-style addressing. Objects are plain files under dir/buckets/BUCKET/KEY
// and their metadata JSON files under dir/metadata.
func StartS3(dir, addr string) (*S3Server, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, fmt.Errorf("devenv: s3: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("devenv: s3: %w", err)
	}
	// s3afero keeps objects as files (inspectable, tamperable in tests) and
	// needs no dependency beyond afero, unlike s3bolt.
	fs, err := s3afero.FsPath(dir, s3afero.FsPathCreateAll)
	if err != nil {
		return nil, fmt.Errorf("devenv: s3: %w", err)
	}
	backend, err := s3afero.MultiBucket(fs)
	if err != nil {
		return nil, fmt.Errorf("devenv: s3: %w", err)
	}
	faker := gofakes3.New(backend, gofakes3.WithIntegrityCheck(true))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("devenv: s3: %w", err)
	}
	s := &S3Server{
		URL:       "http://" + ln.Addr().String(),
		AccessKey: devS3AccessKey,
		SecretKey: devS3SecretKey,
	}
	s.srv = &http.Server{
		Handler:           requireS3Credential(devS3AccessKey, faker.Server()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Close stops the server, letting in-flight requests finish for a while.
func (s *S3Server) Close() error {
	if err := closeHTTP(s.srv); err != nil {
		return fmt.Errorf("devenv: s3: close: %w", err)
	}
	return nil
}

// closeHTTP shuts srv down gracefully for a second, then closes what is
// left: clients keep spare connections that never carry a request, and
// Shutdown would wait 5 s for each of them.
func closeHTTP(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil && errors.Is(err, context.DeadlineExceeded) {
		return srv.Close()
	} else if err != nil {
		return err
	}
	return nil
}

// requireS3Credential refuses requests that are not signed with accessKey
// (Authorization header or presigned query) and expired presigned URLs.
// gofakes3 checks no signature at all; this makes code that forgets to sign
// or presign fail in dev as it would in production. It does not verify the
// signature itself.
func requireS3Credential(accessKey string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth := r.Header.Get("Authorization"); auth != "" {
			if strings.HasPrefix(auth, "AWS4-HMAC-SHA256 ") && strings.Contains(auth, "Credential="+accessKey+"/") {
				next.ServeHTTP(w, r)
				return
			}
			s3Error(w, http.StatusForbidden, "InvalidAccessKeyId", "unknown access key")
			return
		}
		q := r.URL.Query()
		if !strings.HasPrefix(q.Get("X-Amz-Credential"), accessKey+"/") || q.Get("X-Amz-Signature") == "" {
			s3Error(w, http.StatusForbidden, "AccessDenied", "request is not signed")
			return
		}
		signed, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date"))
		secs, err2 := strconv.Atoi(q.Get("X-Amz-Expires"))
		if err != nil || err2 != nil || secs <= 0 {
			s3Error(w, http.StatusForbidden, "AccessDenied", "bad presigned date or expiry")
			return
		}
		if time.Now().After(signed.Add(time.Duration(secs) * time.Second)) {
			s3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

// checkLoopback refuses to listen beyond this machine: these stand-ins have
// no real authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return errors.New("address " + addr + " is not a loopback address")
	}
	return nil
}
