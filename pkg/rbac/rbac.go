// Package rbac says what each role of the commune staff may do, with
// Casbin, from the model and policy embedded from configs/.
//
// The split: the policy (role → permissions, role inheritance) is a
// versioned file, loaded once into an enforcer that holds no assignment;
// the assignments (which user holds which role in which commune) live in
// PostgreSQL (staff_memberships) and are read with the staff session at
// every request, so that a role change or a deactivation takes effect on
// the very next request on every instance, with no cache to go stale. The
// subject Casbin judges is that role; the commune is always the request
// host's.
package rbac

import (
	"fmt"
	"slices"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"portail/configs"
)

// Roles of the commune staff.
const (
	RoleAdmin  = "admin"
	RoleAgent  = "agent"
	RoleViewer = "viewer"
)

// Policy is the loaded model and policy. Its methods are safe for
// concurrent use.
type Policy struct {
	enforcer    *casbin.SyncedEnforcer
	permissions []string // "obj:act", sorted
	roles       []string // sorted
}

// Load builds the policy from the embedded configs/rbac_model.conf and
// configs/rbac_policy.csv.
func Load() (*Policy, error) {
	return New(configs.RBACModel, configs.RBACPolicy)
}

// New builds a policy from a model and policy lines (tests give their own).
// A line Casbin cannot read is an error, never skipped.
func New(modelText, policyText string) (*Policy, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("rbac: model: %w", err)
	}
	e, err := casbin.NewSyncedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("rbac: enforcer: %w", err)
	}
	e.EnableAutoSave(false)
	p := &Policy{enforcer: e}
	perms, roles := map[string]bool{}, map[string]bool{}
	for n, line := range strings.Split(policyText, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, ",")
		for i := range fields {
			fields[i] = strings.TrimSpace(fields[i])
		}
		switch {
		case fields[0] == "p" && len(fields) == 4 && fields[1] != "" && validName(fields[2]) && validName(fields[3]):
			perms[fields[2]+":"+fields[3]] = true
			roles[fields[1]] = true
		case fields[0] == "g" && len(fields) == 3 && fields[1] != "" && fields[2] != "":
			roles[fields[1]], roles[fields[2]] = true, true
		default:
			return nil, fmt.Errorf("rbac: policy line %d: %q is neither \"p, role, object, action\" nor \"g, role, inherited role\"", n+1, line)
		}
		if err := persist.LoadPolicyLine(line, e.GetModel()); err != nil {
			return nil, fmt.Errorf("rbac: policy line %d: %w", n+1, err)
		}
	}
	if err := e.BuildRoleLinks(); err != nil {
		return nil, fmt.Errorf("rbac: roles: %w", err)
	}
	for perm := range perms {
		p.permissions = append(p.permissions, perm)
	}
	for role := range roles {
		p.roles = append(p.roles, role)
	}
	slices.Sort(p.permissions)
	slices.Sort(p.roles)
	return p, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r == '_') {
			return false
		}
	}
	return true
}

// Can tells whether role may use perm ("invoices:write"). An unknown role
// or permission may do nothing.
func (p *Policy) Can(role, perm string) bool {
	obj, act, ok := strings.Cut(perm, ":")
	if !ok || role == "" {
		return false
	}
	allowed, err := p.enforcer.Enforce(role, obj, act)
	return err == nil && allowed
}

// Known tells whether perm is granted by some line of the policy: a route
// may only require a known permission.
func (p *Policy) Known(perm string) bool {
	_, found := slices.BinarySearch(p.permissions, perm)
	return found
}

// Permissions lists every permission of the policy, sorted.
func (p *Policy) Permissions() []string { return slices.Clone(p.permissions) }

// Roles lists every role of the policy, sorted.
func (p *Policy) Roles() []string { return slices.Clone(p.roles) }
