package web_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/audit"
)

// lastEntry is the most recent audit entry of sistec with this action.
func lastEntry(t *testing.T, e *apptest.Env, action string) audit.Entry {
	t.Helper()
	sistec, err := e.App.Tenants.BySlug(context.Background(), "sistec")
	if err != nil {
		t.Fatal(err)
	}
	es, _, err := audit.Search(context.Background(), e.App.DB, sistec.ID, audit.Filter{Action: action}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) == 0 || es[0].Action != action {
		t.Fatalf("no audit entry %s", action)
	}
	return es[0]
}

// The web layer names who acts: the API key that wrote, the resident who
// changed something, each with the client's address.
func TestAuditEntriesNameTheCallerAndItsAddress(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	api := sistecAPI(t, e)
	var keyID int64
	if err := e.App.DB.Get(&keyID, `SELECT max(id) FROM api_keys`); err != nil {
		t.Fatal(err)
	}
	if status, out := api.do("PUT", "/payers/SISTEC900", "application/json",
		[]byte(`{"display_name":"Nouvel HABITANT","email":"nouvel.habitant@demo.fr"}`)); status != 201 {
		t.Fatalf("PUT payer: %d %v", status, out)
	}
	if got := lastEntry(t, e, "payers.imported"); got.ActorKind != audit.KindAPIKey || got.ActorID != keyID ||
		got.IP != "127.0.0.1" || got.ObjectType != audit.ObjectImportBatch {
		t.Errorf("API write journaled as %+v, want api_key %d from 127.0.0.1 on its batch", got, keyID)
	}
	api.importFile("payers", "Référence;Nom;Email\nSISTEC901;Autre HABITANT;autre.habitant@demo.fr\n", nil)
	if got := lastEntry(t, e, "import.uploaded"); got.ActorKind != audit.KindAPIKey || got.ActorID != keyID || got.IP != "127.0.0.1" {
		t.Errorf("API upload journaled as %+v", got)
	}
	// The job that applied it acts for the key (no address: it is not a request).
	if got := lastEntry(t, e, "payers.imported"); got.ActorKind != audit.KindAPIKey || got.ActorID != keyID {
		t.Errorf("import job journaled as %+v, want the uploading key", got)
	}

	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	var accountID int64
	if err := e.App.DB.Get(&accountID, `SELECT a.id FROM accounts a JOIN tenants t ON t.id = a.tenant_id WHERE t.slug = 'sistec' AND a.email = 'demo@demo.fr'`); err != nil {
		t.Fatal(err)
	}
	if got := lastEntry(t, e, "login.ok"); got.ActorKind != audit.KindResident || got.ActorID != accountID || got.IP != "127.0.0.1" {
		t.Errorf("login journaled as %+v", got)
	}
	id := invoiceIDByNumber(t, e, "2017-020-002059")
	res, _ := post(t, c, e.URL("sistec.localhost", fmt.Sprintf("/factures/%d/reglee", id)), url.Values{"reglee": {"1"}})
	if res.StatusCode != 303 {
		t.Fatalf("declare paid: %d", res.StatusCode)
	}
	if got := lastEntry(t, e, "invoice.declared_paid"); got.ActorKind != audit.KindResident || got.ActorID != accountID ||
		got.IP != "127.0.0.1" || got.ObjectType != audit.ObjectInvoice || got.ObjectID != fmt.Sprint(id) {
		t.Errorf("resident's marker journaled as %+v", got)
	}
	post(t, c, e.URL("sistec.localhost", "/informations/papier"), url.Values{"paperless": {"1"}})
	if got := lastEntry(t, e, "paperless.on"); got.ActorKind != audit.KindResident || got.ActorID != accountID || got.IP != "127.0.0.1" {
		t.Errorf("paperless journaled as %+v", got)
	}
}
