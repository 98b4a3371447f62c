// Package templates ships the html/template files (layouts, resident, admin,
// operator, email) and the static assets, embedded in the binary.
package templates

import "embed"

// FS holds every template and static file.
//
//go:embed layouts resident admin errors email static
var FS embed.FS
