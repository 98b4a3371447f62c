//go:build prod

package main

import (
	"context"
	"errors"
	"log/slog"

	"portail/pkg/config"
)

// The production build (go build -tags prod) carries none of the
// development tooling: no private PostgreSQL launcher, S3 server, SMTP
// catcher, PayFiP simulator or load generator. These commands say so.
var errNotInProduction = errors.New("not available in the production build (built with -tags prod); use the development build (make run, make bench)")

func runDev(context.Context, config.Config, *slog.Logger) error { return errNotInProduction }

func runBench(context.Context, config.Config, *slog.Logger, []string) error {
	return errNotInProduction
}
