package rbac_test

import (
	"slices"
	"strings"
	"testing"

	"portail/configs"
	"portail/pkg/rbac"
)

// granted is what the issue asks of each role, written out: admin does
// everything in the commune; agent works on payers, invoices, imports,
// payments, messages, texts and announcements; viewer reads, changes
// nothing (its own profile aside). Every permission of the policy file
// must appear here, so that a new one forces a decision for every role.
var granted = map[string][]string{
	"dashboard:read":           {"admin", "agent", "viewer"},
	"payers:read":              {"admin", "agent", "viewer"},
	"invoices:read":            {"admin", "agent", "viewer"},
	"imports:read":             {"admin", "agent", "viewer"},
	"payments:read":            {"admin", "agent", "viewer"},
	"messages:read":            {"admin", "agent", "viewer"},
	"paperless:read":           {"admin", "agent", "viewer"},
	"texts:read":               {"admin", "agent", "viewer"},
	"announcements:read":       {"admin", "agent", "viewer"},
	"profile:manage":           {"admin", "agent", "viewer"},
	"payers:write":             {"admin", "agent"},
	"invoices:write":           {"admin", "agent"},
	"imports:write":            {"admin", "agent"},
	"payments:export":          {"admin", "agent"},
	"invoices:export":          {"admin", "agent"},
	"paperless:export":         {"admin", "agent"},
	"messages:write":           {"admin", "agent"},
	"texts:write":              {"admin", "agent"},
	"announcements:write":      {"admin", "agent"},
	"staff:manage":             {"admin"},
	"apikeys:manage":           {"admin"},
	"audit:read":               {"admin"},
	"settings:write":           {"admin"},
	"commune_payments:suspend": {"admin"},
}

// permissionsInFile reads the permissions straight from the policy file,
// not through the package under test.
func permissionsInFile(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, line := range strings.Split(configs.RBACPolicy, "\n") {
		f := strings.Split(line, ",")
		if len(f) == 4 && strings.TrimSpace(f[0]) == "p" {
			seen[strings.TrimSpace(f[2])+":"+strings.TrimSpace(f[3])] = true
		}
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func TestEveryRoleAndPermissionOfThePolicy(t *testing.T) {
	p, err := rbac.Load()
	if err != nil {
		t.Fatal(err)
	}
	inFile := permissionsInFile(t)
	if len(inFile) < 20 {
		t.Fatalf("only %d permissions read from the policy file", len(inFile))
	}
	if !slices.Equal(p.Permissions(), inFile) {
		t.Fatalf("Permissions() = %v, the file has %v", p.Permissions(), inFile)
	}
	if got := p.Roles(); !slices.Equal(got, []string{"admin", "agent", "viewer"}) {
		t.Fatalf("roles %v", got)
	}
	for _, perm := range inFile {
		want, ok := granted[perm]
		if !ok {
			t.Errorf("%s is in the policy but not in this test: decide which roles hold it", perm)
			continue
		}
		for _, role := range p.Roles() {
			if got := p.Can(role, perm); got != slices.Contains(want, role) {
				t.Errorf("Can(%s, %s) = %v", role, perm, got)
			}
		}
		if !p.Known(perm) {
			t.Errorf("%s not known", perm)
		}
	}
	for perm := range granted {
		if !slices.Contains(inFile, perm) {
			t.Errorf("%s is expected but missing from the policy file", perm)
		}
	}
}

func TestUnknownRolesAndPermissionsMayDoNothing(t *testing.T) {
	p, err := rbac.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range [][2]string{
		{"", "invoices:read"}, {"operator", "invoices:read"}, {"ADMIN", "invoices:read"},
		{"admin", "invoices"}, {"admin", "invoices:delete"}, {"admin", ":"}, {"admin", ""},
	} {
		if p.Can(c[0], c[1]) {
			t.Errorf("Can(%q, %q) = true", c[0], c[1])
		}
	}
	if p.Known("invoices:delete") {
		t.Error("an unknown permission is known")
	}
}

func TestUnreadablePolicyIsAnError(t *testing.T) {
	for _, policy := range []string{
		"p, admin, invoices",
		"p, admin, invoices, read, extra",
		"x, admin, invoices, read",
		"p, admin, Invoices, read",
		"g, admin",
	} {
		if _, err := rbac.New(configs.RBACModel, policy); err == nil {
			t.Errorf("%q accepted", policy)
		}
	}
}
