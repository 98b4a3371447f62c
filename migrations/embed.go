// Package migrations holds the forward-only SQL migrations, applied by goose.
package migrations

import "embed"

// FS holds every migration file; goose reads them in timestamp order.
//
//go:embed *.sql
var FS embed.FS
