// Command portail is the one binary of Portail des factures:
//
//	portail dev                  everything on this machine (embedded default)
//	portail serve                production: external PostgreSQL, S3, SMTP
//	portail migrate              apply pending database migrations
//	portail tenants check [dir]  validate tenants/<slug>/tenant.yaml files
//	portail tenants apply [dir]  create or update the communes they describe
//	portail tenants export|create|set|suspend|resume SLUG …
//	portail import payers|invoices --tenant SLUG FILE [ZIP]
//	portail staff invite|list|disable --tenant SLUG …
//	portail bench [flags]        measure the non-functional targets (make bench)
//
// Global flag: --config FILE (optional; PORTAIL_* variables override it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	_ "time/tzdata" // Europe/Paris in a container without zone files

	"portail/pkg/config"
)

const usage = `Usage: portail [--config FILE] COMMAND

Commands:
  dev                   run everything on this machine: private PostgreSQL, S3 server,
                        SMTP catcher, PayFiP simulator, demo communes (make run)
  serve                 run the portal against the configured services (production)
  migrate               apply pending database migrations
  tenants check [DIR]   validate the communes' tenant.yaml files (default: tenants.dir)
  tenants apply [--force] [DIR]
                        create or update the communes they describe (refuses to overwrite
                        a field changed elsewhere since the last apply, unless --force)
  tenants export SLUG [DIR]
                        write DIR/SLUG/tenant.yaml and its logo from the database
  tenants create|set SLUG FIELD=VALUE…
                        create a commune, or change fields named as in tenant.yaml
  tenants suspend|resume SLUG
                        maintenance page for a commune (PayFiP results still processed)
  import payers --tenant SLUG FILE.csv
                        load payers from the billing software's CSV export
  import invoices --tenant SLUG FILE.csv [PDFS.zip]
                        load invoices (and their PDFs, named NUMBER.pdf)
  apikey create|list|revoke --tenant SLUG [--name NAME] [--prefix P]
                        API keys of billing software (/api/v1)
  staff invite --tenant SLUG --email EMAIL --role admin|agent|viewer [--name NAME]
  staff list|disable --tenant SLUG [--email EMAIL]
                        the commune's staff (back office /admin)
  bench [--invoices N] [--large N] [--duration D] [--stateless=false] …
                        build, seed a private database, load the server, print
                        the table of the portal's performance targets (make bench; -h for flags)
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "portail:", err)
		os.Exit(1)
	}
}

// run runs the command of args until it ends or SIGINT/SIGTERM arrives.
func run(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return runContext(ctx, args)
}

// runContext runs the command of args until it ends or ctx is cancelled
// (tests stop `serve` this way).
func runContext(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("portail", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(os.Stderr, usage) }
	configFile := fs.String("config", "", "configuration file (YAML)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		fs.Usage()
		return errors.New("missing command")
	}
	cfg, err := config.Load(*configFile)
	if err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	if os.Getenv("GOMEMLIMIT") == "" && cfg.Process.MemoryLimitMB > 0 {
		debug.SetMemoryLimit(int64(cfg.Process.MemoryLimitMB) << 20)
	}
	switch args[0] {
	case "dev":
		return runDev(ctx, cfg, log)
	case "serve":
		return runServe(ctx, cfg, log)
	case "migrate":
		return runMigrate(ctx, cfg, log)
	case "tenants":
		return runTenants(ctx, cfg, log, args[1:])
	case "import":
		return runImport(ctx, cfg, log, args[1:], os.Stdout, os.Stderr)
	case "apikey":
		return runAPIKey(ctx, cfg, log, args[1:])
	case "staff":
		return runStaff(ctx, cfg, log, args[1:], os.Stdout)
	case "bench":
		return runBench(ctx, cfg, log, args[1:])
	case "help", "-h", "--help":
		fs.Usage()
		return nil
	}
	fs.Usage()
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	level.UnmarshalText([]byte(strings.ToUpper(c.Level)))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
