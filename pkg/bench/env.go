package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jmoiron/sqlx"

	"portail/pkg/config"
	"portail/pkg/devenv"
	"portail/pkg/payfip/sim"
	"portail/pkg/pgcluster"
)

// run is the state of one benchmark run.
type run struct {
	o     Options
	start time.Time
	rep   *report

	dir    string
	rmDir  bool
	bin    string
	pg     *pgcluster.Cluster
	dbName string
	s3     *devenv.S3Server
	mail   *devenv.MailCatcher
	payfip *devenv.PayFiPSimulator
	cfg    config.Config // services as the portal reaches them
	db     *sqlx.DB      // the bench's own pool (seeding, checks)

	servers []*server // started processes, stopped at close
	closers []func()
}

// setup prepares the work directory, the binary and the services.
func (r *run) setup(ctx context.Context) error {
	r.dir = r.o.Dir
	if r.dir == "" {
		d, err := os.MkdirTemp("", "portail-bench-")
		if err != nil {
			return err
		}
		r.dir, r.rmDir = d, !r.o.Keep
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	r.progress("work directory %s", r.dir)
	if err := r.build(ctx); err != nil {
		return err
	}

	port, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	r.pg, err = pgcluster.Start(ctx, filepath.Join(r.dir, "pg"), port)
	if err != nil {
		return err
	}
	r.dbName = "portail_bench"
	if created, err := r.pg.CreateDatabase(ctx, r.dbName); err != nil {
		return err
	} else if !created {
		return fmt.Errorf("bench: database %s already exists: use a fresh --dir", r.dbName)
	}
	r.progress("PostgreSQL on 127.0.0.1:%d (fsync off), database %s", port, r.dbName)

	r.s3, err = devenv.StartS3(filepath.Join(r.dir, "s3"), "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.closers = append(r.closers, func() { r.s3.Close() })
	r.mail, err = devenv.StartMailCatcher(filepath.Join(r.dir, "mail"), "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return err
	}
	r.closers = append(r.closers, func() { r.mail.Close() })
	r.payfip, err = devenv.StartPayFiP("127.0.0.1:0")
	if err != nil {
		return err
	}
	r.closers = append(r.closers, func() { r.payfip.Close() })
	// Results come back through the browser return: the bench measures it,
	// and the simulator could not resolve *.localhost for notifications.
	ctl := sim.DefaultControl()
	ctl.DropNotifications = true
	if err := r.payfip.Sim.Control(ctl); err != nil {
		return err
	}

	c := r.o.Base
	c.Database.URL = r.pg.URL(r.dbName)
	c.S3.Endpoint, c.S3.AccessKey, c.S3.SecretKey = r.s3.URL, r.s3.AccessKey, r.s3.SecretKey
	c.S3.Region, c.S3.PathStyle, c.S3.Bucket = "us-east-1", true, "portail"
	host, p, _ := net.SplitHostPort(r.mail.SMTPAddr)
	c.SMTP.Host, c.SMTP.Security, c.SMTP.Username, c.SMTP.Password = host, "none", "", ""
	c.SMTP.Port, _ = strconv.Atoi(p)
	c.HTTP.PublicScheme = "http"
	c.HTTP.ShutdownTimeout = 5 * time.Second
	r.payfip.Configure(&c)
	r.cfg = c

	if err := r.exec(ctx, "migrate"); err != nil {
		return err
	}
	r.progress("schema migrated by `portail migrate`")
	return nil
}

// build compiles the portal as `make build` does, unless --binary is given.
func (r *run) build(ctx context.Context) error {
	if r.o.Binary != "" {
		r.bin = r.o.Binary
		r.progress("using binary %s", r.bin)
		return nil
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return errors.New("bench: not inside the portail module: run it from the repository, or pass --binary")
	}
	r.bin = filepath.Join(r.dir, "portail")
	t := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", r.bin, "./cmd/portail")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: go build: %w\n%s", err, b)
	}
	r.progress("built %s in %s", r.bin, time.Since(t).Round(time.Millisecond))
	return nil
}

// env is the environment of a portal process: PORTAIL_* variables only
// from the bench, pointing at its private services.
func (r *run) env(port, publicPort int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PORTAIL_") {
			env = append(env, kv)
		}
	}
	c := r.cfg
	dbURL := c.Database.URL
	if r.o.DBParams != "" {
		dbURL += "&" + r.o.DBParams
	}
	return append(append(env,
		"PORTAIL_DATABASE_URL="+dbURL,
		"PORTAIL_S3_ENDPOINT="+c.S3.Endpoint,
		"PORTAIL_S3_ACCESS_KEY="+c.S3.AccessKey,
		"PORTAIL_S3_SECRET_KEY="+c.S3.SecretKey,
		"PORTAIL_S3_REGION="+c.S3.Region,
		"PORTAIL_S3_BUCKET="+c.S3.Bucket,
		"PORTAIL_S3_PATH_STYLE=true",
		"PORTAIL_SMTP_HOST="+c.SMTP.Host,
		"PORTAIL_SMTP_PORT="+strconv.Itoa(c.SMTP.Port),
		"PORTAIL_SMTP_SECURITY=none",
		"PORTAIL_PAYFIP_CLASSIC_URL="+c.PayFiP.ClassicURL,
		"PORTAIL_PAYFIP_WS_PAYMENT_URL="+c.PayFiP.WSPaymentURL,
		"PORTAIL_PAYFIP_SOAP_URL="+c.PayFiP.SOAPURL,
		"PORTAIL_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"PORTAIL_HTTP_PUBLIC_SCHEME=http",
		"PORTAIL_HTTP_PUBLIC_PORT="+strconv.Itoa(publicPort),
		"PORTAIL_HTTP_SHUTDOWN_TIMEOUT=5s",
		"PORTAIL_LOG_LEVEL=info",
		"PORTAIL_LOG_FORMAT=text",
	), r.o.ServerEnv...)
}

// exec runs a one-shot portal command (e.g. migrate).
func (r *run) exec(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = r.env(0, 0)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("bench: portail %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

// close stops what the run started, the database last.
func (r *run) close() {
	for _, s := range r.servers {
		s.stop()
	}
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	if r.db != nil {
		r.db.Close()
	}
	if r.pg != nil {
		if err := r.pg.Stop(); err != nil {
			r.progress("stop PostgreSQL: %v", err)
		}
	}
	if r.rmDir {
		os.RemoveAll(r.dir)
	} else if r.dir != "" {
		r.progress("kept %s", r.dir)
	}
}

// server is a `portail serve` process.
type server struct {
	name string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	requests atomic.Int64 // access-log lines ("msg=http")
	homes    atomic.Int64 // of which GET /accueil
	errors   atomic.Int64 // log lines at level ERROR
	mu       sync.Mutex
	tail     []string // last log lines, for failures
	logFile  *os.File
}

// startServer runs `portail serve` on 127.0.0.1:port and waits until it
// answers /healthz.
func (r *run) startServer(ctx context.Context, name string, port, publicPort int) (*server, error) {
	s := &server{name: name, port: port, done: make(chan struct{})}
	lf, err := os.Create(filepath.Join(r.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	s.logFile = lf
	// Not CommandContext: the server is stopped gracefully by stop.
	s.cmd = exec.Command(r.bin, "serve")
	s.cmd.Env = r.env(port, publicPort)
	s.cmd.Stdout = lf
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("bench: start %s: %w", name, err)
	}
	r.servers = append(r.servers, s)
	logDone := make(chan struct{})
	go s.readLog(stderr, logDone)
	go func() {
		<-logDone
		s.err = s.cmd.Wait()
		lf.Close()
		close(s.done)
	}()
	if err := waitHealthy(ctx, s); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) readLog(rd io.Reader, done chan struct{}) {
	defer close(done)
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		access := bytes.Contains(line, []byte(" msg=http "))
		failed := bytes.Contains(line, []byte("level=ERROR"))
		if access {
			s.requests.Add(1)
			if bytes.Contains(line, []byte(" path=/accueil ")) {
				s.homes.Add(1)
			}
		}
		if failed {
			s.errors.Add(1)
		}
		// Access lines are only counted: writing them would cost the
		// machine more than the server spends on them.
		if !access || failed {
			s.logFile.Write(append(line, '\n'))
			s.mu.Lock()
			s.tail = append(s.tail, string(line))
			if len(s.tail) > 40 {
				s.tail = s.tail[len(s.tail)-40:]
			}
			s.mu.Unlock()
		}
	}
}

func (s *server) lastLines() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.tail, "\n")
}

func (s *server) url(path string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", s.port, path) }

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// stop ends the process gracefully (SIGTERM), killing it after 15 s.
func (s *server) stop() {
	if !s.running() {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func waitHealthy(ctx context.Context, s *server) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Get(s.url("/healthz"))
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if !s.running() {
			return fmt.Errorf("bench: %s exited: %v\n%s", s.name, s.err, s.lastLines())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s not healthy after 30 s: %v\n%s", s.name, err, s.lastLines())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// memory reads the process's resident set and its peak (kB → bytes).
func (s *server) memory() (rss, peak int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.pid()))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak
}

// resetPeak restarts VmHWM from the current RSS (Linux clear_refs 5), so
// that each scenario gets its own peak.
func (s *server) resetPeak() bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.pid()), []byte("5"), 0) == nil
}

// rssWatch samples RSS while a scenario runs; peak also reads VmHWM.
type rssWatch struct {
	s     *server
	max   atomic.Int64
	stopc chan struct{}
	wg    sync.WaitGroup
}

func watchRSS(s *server) *rssWatch {
	w := &rssWatch{s: s, stopc: make(chan struct{})}
	if s == nil {
		return w
	}
	s.resetPeak()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if rss, _ := s.memory(); rss > w.max.Load() {
				w.max.Store(rss)
			}
			select {
			case <-w.stopc:
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// peak stops sampling and returns the highest RSS seen by either means.
func (w *rssWatch) peak() int64 {
	if w.s == nil {
		return 0
	}
	close(w.stopc)
	w.wg.Wait()
	_, hwm := w.s.memory()
	return max(hwm, w.max.Load())
}
