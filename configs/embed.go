// Package configs ships the default configuration and the Casbin model and policy.
package configs

import _ "embed"

// Defaults is configs/portail.yaml: every key the program knows, with its default.
//
//go:embed portail.yaml
var Defaults []byte
