//go:build !prod

package main

import (
	"context"
	"log/slog"

	"portail/pkg/bench"
	"portail/pkg/config"
)

// runBench is `make bench`: the portal's non-functional targets
// measured on this machine (see pkg/bench).
func runBench(ctx context.Context, cfg config.Config, log *slog.Logger, args []string) error {
	o, err := bench.ParseArgs(args)
	if err != nil {
		return err
	}
	o.Base, o.Log = cfg, log
	return bench.Run(ctx, o)
}
