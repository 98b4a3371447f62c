package tenant_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"portail/pkg/dbtest"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const goodYAML = `slug: %s
name: "MAIRIE DE TEST"
service_label: "Facturation"
hosts:
  primary: %s
contact:
  email: "service@test.localhost"
payfip:
  numcli: "%s"
`

func writeTenant(t *testing.T, dir, slug, body string) string {
	t.Helper()
	p := filepath.Join(dir, slug, "tenant.yaml")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDemoTenantsAreValid(t *testing.T) {
	files, err := tenant.LoadDir("../../tenants")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("want at least two demo communes, got %d", len(files))
	}
}

func TestCheckNamesFileAndField(t *testing.T) {
	cases := []struct {
		name, body, field string
	}{
		{"bad numcli", fmt.Sprintf(goodYAML, "a", "a.localhost", "4200"), "payfip.numcli"},
		{"numcli letters", fmt.Sprintf(goodYAML, "a", "a.localhost", "00420A"), "payfip.numcli"},
		{"unknown key", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") + "colour: red\n", "colour"},
		{"host with port", fmt.Sprintf(goodYAML, "a", "a.localhost:8080", "004200"), "hosts.primary"},
		{"slug not folder", fmt.Sprintf(goodYAML, "b", "a.localhost", "004200"), "slug"},
		{"batch max without batch", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") + "payments:\n  batch_max: 3\n", "payments.batch_max"},
		{"weak password floor", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") + "accounts:\n  password_min_length: 5\n", "accounts.password_min_length"},
		{"not yaml", "slug: [", "tenant.yaml"},
		{"reminders too early", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") + "reminders:\n  enabled: true\n  days_before: 90\n", "reminders.days_before"},
		{"reminders after the due date", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") + "reminders:\n  days_before: -1\n", "reminders.days_before"},
		{"reminders not a switch", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") + "reminders:\n  enabled: souvent\n", "reminders"},
		{"bad callback network", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") +
			"  endpoints:\n    classic_url: https://qualif.example/tpa/paiement.web\n    callback_networks: [\"192.0.2.0/24\", \"payfip.gouv.fr\"]\n",
			"payfip.endpoints.callback_networks[1]"},
		{"callback networks without own endpoint", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200") +
			"  endpoints:\n    callback_networks: [\"192.0.2.0/24\"]\n", "payfip.endpoints.classic_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeTenant(t, dir, "a", tc.body)
			_, err := tenant.LoadDir(dir)
			if err == nil {
				t.Fatal("invalid file accepted")
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name the file %s and the field %s", err, p, tc.field)
			}
		})
	}
}

// TestReminderSettingsApplied: reminders are off unless a commune turns
// them on, five days before the due date unless it says otherwise, and a
// change reaches the row.
func TestReminderSettingsApplied(t *testing.T) {
	d := dbtest.New(t)
	ctx := context.Background()
	store := tenant.NewStore(d)
	dir := t.TempDir()
	writeTenant(t, dir, "a", fmt.Sprintf(goodYAML, "a", "a.localhost", "000001"))
	writeTenant(t, dir, "b", fmt.Sprintf(goodYAML, "b", "b.localhost", "000002")+"reminders:\n  enabled: true\n")
	apply := func() {
		t.Helper()
		files, err := tenant.LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Apply(ctx, files); err != nil {
			t.Fatal(err)
		}
	}
	settings := func(slug string) (bool, int) {
		t.Helper()
		tn, err := store.BySlug(ctx, slug)
		if err != nil {
			t.Fatal(err)
		}
		return tn.RemindersEnabled, tn.RemindersDaysBefore
	}
	apply()
	if on, days := settings("a"); on || days != 5 {
		t.Errorf("no reminders section: enabled %v, %d days; want off, 5", on, days)
	}
	if on, days := settings("b"); !on || days != 5 {
		t.Errorf("enabled without days: enabled %v, %d days; want on, 5", on, days)
	}
	writeTenant(t, dir, "b", fmt.Sprintf(goodYAML, "b", "b.localhost", "000002")+"reminders:\n  enabled: true\n  days_before: 10\n")
	apply()
	if on, days := settings("b"); !on || days != 10 {
		t.Errorf("after a change: enabled %v, %d days; want on, 10", on, days)
	}
}

func TestCheckRefusesHostUsedTwice(t *testing.T) {
	dir := t.TempDir()
	writeTenant(t, dir, "a", fmt.Sprintf(goodYAML, "a", "same.localhost", "000001"))
	p := writeTenant(t, dir, "b", fmt.Sprintf(goodYAML, "b", "same.localhost", "000002"))
	_, err := tenant.LoadDir(dir)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"same.localhost"`) {
		t.Fatalf("host used twice: got %v", err)
	}
}

func TestApplyIsIdempotentAndResolvesHosts(t *testing.T) {
	d := dbtest.New(t)
	ctx := context.Background()
	store := tenant.NewStore(d)
	files, err := tenant.LoadDir("../../tenants")
	if err != nil {
		t.Fatal(err)
	}
	res, err := store.Apply(ctx, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if !r.Created {
			t.Fatalf("first apply of %s: not created", r.Slug)
		}
	}
	res, err = store.Apply(ctx, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Created || r.Changed {
			t.Fatalf("second apply of %s changed something: %+v", r.Slug, r)
		}
	}
	var n int
	d.Get(&n, `SELECT count(*) FROM tenants`)
	if n != len(files) {
		t.Fatalf("%d tenants after two applies of %d files", n, len(files))
	}
	for _, host := range []string{"SISTEC.localhost", "sistec.localhost.", "sistec.localhost:8080", "www.sistec.localhost"} {
		got, err := store.ByHost(ctx, tenant.NormalizeHost(host))
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if got.Name != "MAIRIE DE SISTEC" || got.PayFiPNumcli != "004200" || !got.BatchAllowed {
			t.Fatalf("%s resolved to %+v", host, got)
		}
	}
	if _, err := store.ByHost(ctx, "inconnu.localhost"); err != tenant.ErrNotFound {
		t.Fatalf("unknown host: %v", err)
	}
	// A change is applied, and reported as a change.
	files[0].Name = "MAIRIE MODIFIEE"
	res, err = store.Apply(ctx, files)
	if err != nil || !res[0].Changed {
		t.Fatalf("changed file not applied: %+v %v", res, err)
	}
}

func TestApplyRefusesHostOfAnotherTenant(t *testing.T) {
	d := dbtest.New(t)
	ctx := context.Background()
	store := tenant.NewStore(d)
	dir := t.TempDir()
	writeTenant(t, dir, "a", fmt.Sprintf(goodYAML, "a", "a.localhost", "000001"))
	files, _ := tenant.LoadDir(dir)
	if _, err := store.Apply(ctx, files); err != nil {
		t.Fatal(err)
	}
	dir2 := t.TempDir()
	writeTenant(t, dir2, "b", fmt.Sprintf(goodYAML, "b", "a.localhost", "000002"))
	files2, _ := tenant.LoadDir(dir2)
	if _, err := store.Apply(ctx, files2); err == nil {
		t.Fatal("a host was moved to another tenant silently")
	}
}

func FuzzNormalizeHost(f *testing.F) {
	for _, s := range []string{"sistec.localhost", "SISTEC.LOCALHOST.:8080", "[::1]:80", "", ":", "a..b."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		n := tenant.NormalizeHost(h)
		if n != strings.ToLower(n) {
			t.Fatalf("%q normalised to non-lower-case %q", h, n)
		}
		if tenant.NormalizeHost(n) != n && !strings.Contains(n, ":") {
			t.Fatalf("not idempotent: %q → %q → %q", h, n, tenant.NormalizeHost(n))
		}
	})
}

func TestCommuneCallbackNetworksAreStored(t *testing.T) {
	d := dbtest.New(t)
	ctx := context.Background()
	dir := t.TempDir()
	writeTenant(t, dir, "a", fmt.Sprintf(goodYAML, "a", "a.localhost", "004200")+
		"  mode: classic\n  endpoints:\n    classic_url: https://qualif.example/tpa/paiement.web\n    callback_networks: [\"192.0.2.0/24\", \" 198.51.100.7 \"]\n")
	writeTenant(t, dir, "b", fmt.Sprintf(goodYAML, "b", "b.localhost", "004201"))
	files, err := tenant.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	store := tenant.NewStore(d)
	if _, err := store.Apply(ctx, files); err != nil {
		t.Fatal(err)
	}
	a, err := store.BySlug(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(a.PayFiPCallbackNetworks, " "); got != "192.0.2.0/24 198.51.100.7" {
		t.Fatalf("commune's callback networks: %q", got)
	}
	b, err := store.BySlug(ctx, "b")
	if err != nil || len(b.PayFiPCallbackNetworks) != 0 {
		t.Fatalf("commune without its own list: %v %v", b.PayFiPCallbackNetworks, err)
	}
	res, err := store.Apply(ctx, files)
	if err != nil || res[0].Changed || res[1].Changed {
		t.Fatalf("second apply: %+v %v", res, err)
	}
}
