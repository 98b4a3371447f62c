// Package configs ships the default configuration and the Casbin model and policy.
package configs

import _ "embed"

// Defaults is configs/portail.yaml: every key the program knows, with its default.
//
//go:embed portail.yaml
var Defaults []byte

// RBACModel is the Casbin model of the staff's permissions.
//
//go:embed rbac_model.conf
var RBACModel string

// RBACPolicy is what each staff role may do (Casbin policy lines).
//
//go:embed rbac_policy.csv
var RBACPolicy string
