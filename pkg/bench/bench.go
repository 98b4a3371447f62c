// Package bench is `portail bench` (make bench): on one machine it builds
// the binary, starts a private PostgreSQL and the other services, seeds
// communes, accounts and invoices through the real import paths, runs the
// built server as its own process and drives it over loopback with vegeta
// as logged-in residents. It prints one table: each scenario beside the
// raw SQL ceiling (pgbench), the import beside a raw COPY, the list page's
// cost at two data sizes, the server's peak RSS, and the two-instance
// (stateless) checks, each against the portal's targets.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"portail/pkg/config"
)

// Options of a run. Zero values take the defaults of ParseArgs.
type Options struct {
	Communes int // communes (tenants)
	Accounts int // accounts in all
	Small    int // invoices at the first size: the flat-cost baseline
	Invoices int // invoices at the configured size: every scenario runs there
	Large    int // optional third size for the flat-cost check (0: none)

	Duration time.Duration // per measured scenario
	Warmup   time.Duration // per scenario, not measured
	Clients  int           // concurrent clients of the page scenarios
	Logins   int           // concurrent logins of the login storm

	Stateless            bool     // run the two-instance checks
	Only                 string   // "staff": only the back office's rows (staff.go), on --invoices
	Dir                  string   // work directory (default: a temporary one, removed)
	Keep                 bool     // keep Dir (database, binary, logs) at the end
	Binary               string   // a built portail binary (default: build one)
	Profile              string   // directory for CPU/heap profiles of an in-process instance ("" = none)
	ServerEnv            []string // extra KEY=VALUE for the server processes (experiments: GOMEMLIMIT…)
	DBParams             string   // extra parameters of the server processes' database URL (experiments)
	HashMemory, HashTime uint32   // argon2id parameters of the seeded password hash (0: the portal's defaults)

	Base config.Config // the configuration loaded by the command (defaults, env)
	Out  io.Writer     // the table (default stdout)
	Log  *slog.Logger  // progress lines (default stderr)
}

// The portal's non-functional targets.
const (
	targetListP99      = 20 * time.Millisecond
	targetImportRate   = 50_000.0
	targetRSS          = 150 << 20
	targetFlatRatio    = 1.20
	maxRequestsPerStep = 500_000 // bound on one scenario's requests, whatever its duration
)

// ParseArgs reads the flags of `portail bench`.
func ParseArgs(args []string) (Options, error) {
	o := Options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.IntVar(&o.Communes, "communes", 100, "communes (tenants)")
	fs.IntVar(&o.Accounts, "accounts", 100_000, "accounts in all")
	fs.IntVar(&o.Small, "small", 100_000, "invoices at the first size (the flat-cost baseline)")
	fs.IntVar(&o.Invoices, "invoices", 1_000_000, "invoices at the configured size (every scenario runs there)")
	fs.IntVar(&o.Large, "large", 0, "optional larger size, up to 10000000, for the flat-cost check (0: none)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time of each scenario")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "unmeasured warm-up before each scenario")
	fs.IntVar(&o.Clients, "clients", 32, "concurrent clients of the page scenarios")
	fs.IntVar(&o.Logins, "logins", 200, "concurrent clients of the login storm")
	fs.BoolVar(&o.Stateless, "stateless", true, "run the two-instance checks behind a load balancer")
	fs.StringVar(&o.Only, "only", "", `run only some rows: "staff" (the back office's search and CSV export, at --invoices)`)
	fs.StringVar(&o.Dir, "dir", "", "work directory (default: a temporary directory, removed at the end)")
	fs.BoolVar(&o.Keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.Binary, "binary", "", "use this portail binary instead of building one")
	fs.StringVar(&o.Profile, "profile", "", "write CPU and heap profiles of an in-process instance under this directory")
	fs.Func("server-env", "KEY=VALUE added to the server processes' environment (repeatable), e.g. GOMEMLIMIT=100MiB", func(v string) error {
		if k, _, ok := strings.Cut(v, "="); !ok || k == "" {
			return fmt.Errorf("want KEY=VALUE, got %q", v)
		}
		o.ServerEnv = append(o.ServerEnv, v)
		return nil
	})
	fs.Func("seed-argon2", "MEMORY_KIB,ITERATIONS of the seeded accounts' password hash (default: the portal's)", func(v string) error {
		m, t, ok := strings.Cut(v, ",")
		mi, err1 := strconv.ParseUint(m, 10, 32)
		ti, err2 := strconv.ParseUint(t, 10, 32)
		if !ok || err1 != nil || err2 != nil || mi < 1024 || ti < 1 {
			return fmt.Errorf("want MEMORY_KIB,ITERATIONS such as 7168,5, got %q", v)
		}
		o.HashMemory, o.HashTime = uint32(mi), uint32(ti)
		return nil
	})
	fs.StringVar(&o.DBParams, "db-params", "", "extra parameters of the servers' database URL, e.g. binary_parameters=yes")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("bench: unexpected argument %q", fs.Arg(0))
	}
	return o, o.check()
}

func (o *Options) check() error {
	var errs []error
	if o.Communes < 1 || o.Communes > 999 {
		errs = append(errs, errors.New("--communes must be between 1 and 999"))
	}
	if o.Accounts < 2*o.Communes {
		errs = append(errs, errors.New("--accounts must be at least twice --communes (one bench resident and others per commune)"))
	}
	if o.Invoices > 10_000_000 || o.Large > 10_000_000 {
		errs = append(errs, errors.New("sizes are capped at 10000000 invoices"))
	}
	if o.Small < o.Communes*(residentInvoices+1) {
		errs = append(errs, fmt.Errorf("--small must be at least %d (each bench resident has %d invoices)", o.Communes*(residentInvoices+1), residentInvoices))
	}
	if o.Invoices < o.Small {
		o.Small = o.Invoices // one size only
	}
	if o.Large != 0 && o.Large <= o.Invoices {
		errs = append(errs, errors.New("--large must be above --invoices"))
	}
	if o.Only != "" && o.Only != "staff" {
		errs = append(errs, errors.New(`--only takes "staff"`))
	}
	if o.Duration <= 0 || o.Duration > 5*time.Minute {
		errs = append(errs, errors.New("--duration must be between 0 and 5m"))
	}
	if o.Clients < 1 || o.Clients > 1000 || o.Logins < 1 || o.Logins > 1000 {
		errs = append(errs, errors.New("--clients and --logins must be between 1 and 1000"))
	}
	return errors.Join(errs...)
}

// Run runs the whole benchmark and prints the table.
func Run(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	if o.Out == nil {
		o.Out = os.Stdout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// A hard bound on the whole run: every loop inside is bounded too.
	ctx, cancel := context.WithTimeout(ctx, 3*time.Hour)
	defer cancel()
	r := &run{o: o, start: time.Now(), rep: &report{}}
	defer r.close()
	if err := r.do(ctx); err != nil {
		r.rep.failure = err.Error()
		r.rep.print(o.Out, r)
		return err
	}
	r.rep.print(o.Out, r)
	return nil
}

// progress prints one line on the progress log with the elapsed time.
func (r *run) progress(format string, a ...any) {
	r.o.Log.Info(fmt.Sprintf("bench %6.1fs  %s", time.Since(r.start).Seconds(), fmt.Sprintf(format, a...)))
}
