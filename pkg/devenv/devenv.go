// Package devenv is the embedded default of `portail dev`: a private
// PostgreSQL cluster, an S3 server and an SMTP catcher on loopback, with their
// data under one directory so that they survive a restart.
package devenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"portail/pkg/config"
	"portail/pkg/pgcluster"
)

// Env is the running embedded default.
type Env struct {
	PG     *pgcluster.Cluster
	S3     *S3Server
	Mail   *MailCatcher
	PayFiP *PayFiPSimulator
}

// Start brings up every service and rewrites cfg so the program reaches
// them exactly as it reaches production services.
func Start(ctx context.Context, cfg *config.Config) (*Env, error) {
	dir := cfg.Dev.DataDir
	env := &Env{}
	var err error
	env.PG, err = pgcluster.Start(ctx, filepath.Join(dir, "pg"), cfg.Dev.PGPort)
	if err != nil {
		return nil, err
	}
	if _, err := env.PG.CreateDatabase(ctx, "portail"); err != nil {
		env.Close()
		return nil, err
	}
	cfg.Database.URL = env.PG.URL("portail")

	env.S3, err = StartS3(filepath.Join(dir, "s3"), cfg.Dev.S3Addr)
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("devenv: S3 server: %w", err)
	}
	cfg.S3.Endpoint = env.S3.URL
	cfg.S3.AccessKey = env.S3.AccessKey
	cfg.S3.SecretKey = env.S3.SecretKey
	cfg.S3.PathStyle = true
	cfg.S3.Region = "us-east-1"

	env.Mail, err = StartMailCatcher(filepath.Join(dir, "mail"), cfg.Dev.SMTPAddr, cfg.Dev.MailWebAddr)
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("devenv: SMTP catcher: %w", err)
	}
	host, port, _ := splitHostPort(env.Mail.SMTPAddr)
	cfg.SMTP.Host, cfg.SMTP.Port, cfg.SMTP.Security = host, port, "none"
	cfg.SMTP.Username, cfg.SMTP.Password = "", ""

	env.PayFiP, err = StartPayFiP(cfg.Dev.PayFiPAddr)
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("devenv: PayFiP simulator: %w", err)
	}
	env.PayFiP.Configure(cfg)
	return env, nil
}

// Close stops every service, PostgreSQL last.
func (e *Env) Close() error {
	var errs []error
	if e.PayFiP != nil {
		errs = append(errs, e.PayFiP.Close())
	}
	if e.Mail != nil {
		errs = append(errs, e.Mail.Close())
	}
	if e.S3 != nil {
		errs = append(errs, e.S3.Close())
	}
	if e.PG != nil {
		errs = append(errs, e.PG.Stop())
	}
	return errors.Join(errs...)
}

func splitHostPort(addr string) (string, int, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	return h, n, err
}
