package announce_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"portail/pkg/announce"
	"portail/pkg/dbtest"
	"portail/pkg/jobs"
	"portail/pkg/tenant"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestFailedDeliveryIsRetriedThenCounted: a send that fails leaves the
// recipient queued for River to retry; on the job's last attempt the
// failure is recorded, shown in the progress, and the announcement is
// finished. A delivery of a settled recipient sends nothing.
func TestFailedDeliveryIsRetriedThenCounted(t *testing.T) {
	d := dbtest.New(t)
	ctx := context.Background()
	client, err := jobs.New(d, jobs.Options{}) // insert-only: the test runs the steps itself
	if err != nil {
		t.Fatal(err)
	}
	var tenantID int64
	if err := d.Get(&tenantID, `INSERT INTO tenants (slug, name, primary_host, payfip_numcli) VALUES ('sistec', 'MAIRIE DE SISTEC', 'sistec.example.fr', '123456') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Exec(`INSERT INTO accounts (tenant_id, external_ref, display_name, email, status) VALUES
		($1, 'A1', 'Un', 'un@exemple.fr', 'active'), ($1, 'A2', 'Deux', 'deux@exemple.fr', 'active'),
		($1, 'A3', 'Trois', 'trois@exemple.fr', 'pending')`, tenantID); err != nil {
		t.Fatal(err)
	}
	var staffID int64
	if err := d.Get(&staffID, `INSERT INTO staff_users (email, name, password_hash) VALUES ('agent@exemple.fr', 'Agent', 'x') RETURNING id`); err != nil {
		t.Fatal(err)
	}
	svc := &announce.Service{DB: d, Jobs: client}
	key := announce.NewRequestKey()
	if _, err := svc.Create(ctx, tenantID, staffID, key, " ", "texte"); err == nil {
		t.Fatal("an announcement without subject was accepted")
	}
	id, err := svc.Create(ctx, tenantID, staffID, key, "Objet", "Texte")
	if err != nil {
		t.Fatal(err)
	}
	// The same confirmation posted again sends nothing more.
	if again, err := svc.Create(ctx, tenantID, staffID, key, "Objet", "Texte"); err != nil || again != id {
		t.Fatalf("the same form again: %d %v, want %d", again, err, id)
	}
	var fanOuts int
	d.Get(&fanOuts, `SELECT count(*) FROM river_job WHERE kind = 'announcement_fan_out'`)
	if fanOuts != 1 {
		t.Fatalf("%d fan-out jobs for one announcement", fanOuts)
	}
	if err := svc.FanOut(ctx, tenantID, id); err != nil {
		t.Fatal(err)
	}
	a, err := svc.Get(ctx, tenantID, id)
	if err != nil || a.Recipients() != 2 || a.Finished() {
		t.Fatalf("after the fan-out: %+v %v", a, err)
	}
	var ids []int64
	d.Select(&ids, `SELECT account_id FROM announcement_recipients WHERE announcement_id = $1 ORDER BY account_id`, id)
	ten := &tenant.Tenant{ID: tenantID, Slug: "sistec"}
	refused := errors.New("550 mailbox unavailable")
	var sends []string
	send := func(_ context.Context, s announce.Sent) error {
		sends = append(sends, s.To)
		if s.To == "un@exemple.fr" {
			return refused
		}
		return nil
	}
	if err := svc.Deliver(ctx, ten, id, ids[0], false, send); !errors.Is(err, refused) {
		t.Fatalf("a failed send not at its last attempt: %v, want the error for River to retry", err)
	}
	if a, _ := svc.Get(ctx, tenantID, id); a.Failed != 0 || a.Done() != 0 {
		t.Fatalf("a failure to be retried is counted: %+v", a)
	}
	if err := svc.Deliver(ctx, ten, id, ids[0], true, send); err != nil {
		t.Fatalf("last attempt: %v", err)
	}
	if err := svc.Deliver(ctx, ten, id, ids[1], false, send); err != nil {
		t.Fatal(err)
	}
	// Reruns of settled deliveries send nothing.
	svc.Deliver(ctx, ten, id, ids[0], true, send)
	svc.Deliver(ctx, ten, id, ids[1], false, send)
	if got := strings.Join(sends, " "); got != "un@exemple.fr un@exemple.fr deux@exemple.fr" {
		t.Errorf("sends: %s", got)
	}
	a, _ = svc.Get(ctx, tenantID, id)
	if a.Sent != 1 || a.Failed != 1 || !a.Finished() {
		t.Fatalf("progress at the end: %+v", a)
	}
	var detail string
	d.Get(&detail, `SELECT error FROM announcement_recipients WHERE account_id = $1`, ids[0])
	if !strings.Contains(detail, "550") {
		t.Errorf("the failure's reason is not kept: %q", detail)
	}
}
