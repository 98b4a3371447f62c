package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"portail/pkg/announce"
	"portail/pkg/apptest"
	"portail/pkg/staff"
)

var (
	announcementPage = regexp.MustCompile(`^/admin/annonces/(\d+)$`)
	confirmationKey  = regexp.MustCompile(`name="cle" value="([A-Z2-7]+)"`)
)

// emailsTo counts the caught emails to addr whose subject is subject.
func emailsTo(e *apptest.Env, addr, subject string) int {
	n := 0
	for _, m := range e.Mail.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) && m.Subject == subject {
				n++
			}
		}
	}
	return n
}

// waitJobsSettled waits until no job of kind is left to run.
func waitJobsSettled(t *testing.T, e *apptest.Env, kind string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = $1 AND state NOT IN ('completed', 'cancelled', 'discarded')`, kind) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s jobs still running after 30 s", kind)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAnnouncementReachesEachActiveResidentOnce: an agent writes an
// announcement, sees its preview and the confirmation "Envoyer à N
// habitants", sends it and follows its progress to the total. Each
// active resident of the commune who did not stop the commune's
// information emails (from the link of an email) receives it once, with
// its unsubscribe link and List-Unsubscribe; not-activated, disabled and
// unsubscribed residents and another commune's do not. Fan-outs run
// again and at once (a retried job, two workers) and a delivery run
// twice email nobody twice. A viewer cannot send (403, nothing stored);
// another commune's staff cannot see it (404).
func TestAnnouncementReachesEachActiveResidentOnce(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	ctx := context.Background()
	sistec, err := e.App.Tenants.BySlug(ctx, "sistec")
	if err != nil {
		t.Fatal(err)
	}
	// 40 more active residents, so that fan-outs have batches to share.
	if _, err := e.App.DB.Exec(`INSERT INTO accounts (tenant_id, external_ref, display_name, email, status)
		SELECT $1, 'ANN' || i, 'Habitant ' || i, 'habitant' || i || '@exemple.fr', 'active' FROM generate_series(1, 40) AS i`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	activateWithPassword(t, e, "sistec.localhost", "marie.durand@demo.fr", strongPassword)
	activateWithPassword(t, e, "sistec.localhost", "famille.lefebvre@demo.fr", strongPassword)
	// belcastel's demo resident has the same address as sistec's: one
	// email to demo@demo.fr means belcastel's resident got none.
	if _, err := e.App.DB.Exec(`UPDATE accounts SET status = 'active' WHERE tenant_id <> $1`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	// Disabled after activation: never emailed.
	if _, err := e.App.DB.Exec(`UPDATE accounts SET status = 'disabled' WHERE tenant_id = $1 AND email = 'habitant40@exemple.fr'`, sistec.ID); err != nil {
		t.Fatal(err)
	}
	// Marie stops the commune's information emails from the link of one.
	var token string
	e.App.DB.QueryRow(`SELECT unsubscribe_token FROM accounts WHERE tenant_id = $1 AND email = 'marie.durand@demo.fr'`, sistec.ID).Scan(&token)
	if res, body := post(t, e.Client(), e.URL("sistec.localhost", "/desabonnement/"+token+"?liste=informations"), url.Values{}); res.StatusCode != 200 ||
		!strings.Contains(body, "ne recevra plus les informations diverses de la commune") {
		t.Fatalf("unsubscribe from the information emails: %d\n%s", res.StatusCode, body)
	}
	var alerts bool
	e.App.DB.QueryRow(`SELECT invoice_alerts FROM accounts WHERE tenant_id = $1 AND email = 'marie.durand@demo.fr'`, sistec.ID).Scan(&alerts)
	if !alerts {
		t.Fatal("stopping the information emails stopped the new-invoice alerts")
	}
	want := []string{"demo@demo.fr", "famille.lefebvre@demo.fr"}
	for i := 1; i < 40; i++ {
		want = append(want, fmt.Sprintf("habitant%d@exemple.fr", i))
	}
	unwanted := []string{"marie.durand@demo.fr", "jean.martin@demo.fr", "habitant40@exemple.fr"}

	// A viewer sees the history, cannot write or send.
	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	vc, _ := staffLogin(t, e, "sistec.localhost", viewer.Email, staffPassword)
	if res, body := fetch(t, vc, e.URL("sistec.localhost", "/admin/annonces")); res.StatusCode != 200 || strings.Contains(body, "Nouvelle annonce") {
		t.Errorf("viewer's Annonces: %d, or offered a new one", res.StatusCode)
	}
	if res, _ := fetch(t, vc, e.URL("sistec.localhost", "/admin/annonces/nouvelle")); res.StatusCode != 403 {
		t.Errorf("viewer's new announcement form: %d", res.StatusCode)
	}
	if res, _ := post(t, vc, e.URL("sistec.localhost", "/admin/annonces"), url.Values{"subject": {"Intrus"}, "body": {"Texte"}}); res.StatusCode != 403 {
		t.Errorf("viewer sends: %d", res.StatusCode)
	}
	if n := countRows(t, e, `SELECT count(*) FROM announcements`); n != 0 {
		t.Fatalf("%d announcements after a viewer's post", n)
	}

	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, "sistec.localhost", agent.Email, staffPassword)
	if res, body := fetch(t, c, e.URL("sistec.localhost", "/admin/annonces/nouvelle")); res.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf("Destinataires aujourd&#39;hui : %d habitants", len(want))) {
		t.Fatalf("new announcement form: %d\n%s", res.StatusCode, body)
	}
	// Refused: the field is named, nothing is stored.
	res, body := post(t, c, e.URL("sistec.localhost", "/admin/annonces/apercu"), url.Values{"subject": {""}, "body": {"Texte"}})
	if res.StatusCode != 422 || !strings.Contains(body, "Veuillez saisir l&#39;objet de l&#39;annonce.") || !strings.Contains(body, `aria-describedby="message"`) {
		t.Fatalf("empty subject: %d", res.StatusCode)
	}
	const subject = "Fermeture de la mairie le 24 décembre"
	const text = "La mairie sera fermée le 24 décembre.\nLe portail reste ouvert. <b>Bonnes fêtes</b>"
	res, body = post(t, c, e.URL("sistec.localhost", "/admin/annonces/apercu"), url.Values{"subject": {subject}, "body": {text}})
	if res.StatusCode != 200 || !strings.Contains(body, "Objet : "+subject) || !strings.Contains(body, "Bonjour Prénom NOM,") ||
		!strings.Contains(body, "&lt;b&gt;Bonnes fêtes&lt;/b&gt;") || !strings.Contains(body, fmt.Sprintf("Envoyer à %d habitants", len(want))) {
		t.Fatalf("preview: %d\n%s", res.StatusCode, body)
	}
	if n := countRows(t, e, `SELECT count(*) FROM announcements`); n != 0 {
		t.Fatal("the preview stored the announcement")
	}
	key := confirmationKey.FindStringSubmatch(body)
	if key == nil {
		t.Fatal("the confirmation form has no key")
	}
	// Not through the preview's confirmation: refused, nothing stored.
	if res, _ := post(t, c, e.URL("sistec.localhost", "/admin/annonces"), url.Values{"subject": {subject}, "body": {text}}); res.StatusCode != 422 {
		t.Fatalf("send without the confirmation: %d", res.StatusCode)
	}
	if n := countRows(t, e, `SELECT count(*) FROM announcements`); n != 0 {
		t.Fatal("an announcement was stored without its confirmation")
	}
	confirm := url.Values{"subject": {subject}, "body": {text}, "cle": {key[1]}}
	res, _ = post(t, c, e.URL("sistec.localhost", "/admin/annonces"), confirm)
	m := announcementPage.FindStringSubmatch(res.Header.Get("Location"))
	if res.StatusCode != http.StatusSeeOther || m == nil {
		t.Fatalf("send: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// The confirmation posted twice (a double click) sends one announcement.
	if again, _ := post(t, c, e.URL("sistec.localhost", "/admin/annonces"), confirm); again.Header.Get("Location") != res.Header.Get("Location") {
		t.Fatalf("the confirmation again: %d %s", again.StatusCode, again.Header.Get("Location"))
	}
	if n := countRows(t, e, `SELECT count(*) FROM announcements`); n != 1 {
		t.Fatalf("%d announcements from one confirmation", n)
	}
	var id int64
	fmt.Sscan(m[1], &id)
	// Two more fan-outs at once, beside the job's own (two workers, a
	// retry), a batch of 3 at a time so that they interleave.
	concurrent := *e.App.Announcements
	concurrent.Batch = 3
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if err := concurrent.FanOut(ctx, sistec.ID, id); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()

	// The sender follows the progress to the total.
	page := e.URL("sistec.localhost", "/admin/annonces/"+m[1])
	var p struct {
		Total, Sent, Failed, Skipped int
		Finished                     bool
	}
	deadline := time.Now().Add(30 * time.Second)
	for !p.Finished {
		if time.Now().After(deadline) {
			t.Fatalf("progress after 30 s: %+v", p)
		}
		time.Sleep(200 * time.Millisecond)
		res, body := fetch(t, c, page+"/progression")
		if res.StatusCode != 200 || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("progress: %d %s", res.StatusCode, body)
		}
	}
	if p.Total != len(want) || p.Sent != len(want) || p.Failed != 0 {
		t.Fatalf("progress at the end: %+v, want %d sent of %d", p, len(want), len(want))
	}
	if res, body := fetch(t, c, page); res.StatusCode != 200 || !strings.Contains(body, fmt.Sprintf("Envoyés : %d sur %d. Échecs : 0.", len(want), len(want))) ||
		!strings.Contains(body, "Envoi terminé.") || !strings.Contains(body, "&lt;b&gt;Bonnes fêtes") {
		t.Fatalf("announcement page: %d\n%s", res.StatusCode, body)
	}
	if _, body := fetch(t, c, e.URL("sistec.localhost", "/admin/annonces")); !strings.Contains(body, subject) || !strings.Contains(body, "Agent agent") {
		t.Error("the history lacks the announcement or its sender")
	}

	// A delivery run again (a retried job) sends nothing more.
	var demoID int64
	e.App.DB.QueryRow(`SELECT id FROM accounts WHERE tenant_id = $1 AND email = 'demo@demo.fr'`, sistec.ID).Scan(&demoID)
	if _, err := e.App.Jobs.Insert(ctx, announce.DeliverArgs{TenantID: sistec.ID, AnnouncementID: id, AccountID: demoID}, nil); err != nil {
		t.Fatal(err)
	}
	waitJobsSettled(t, e, "announcement_delivery")
	if n := countRows(t, e, `SELECT count(*) FROM river_job WHERE kind = 'announcement_delivery'`); n != len(want)+1 {
		t.Errorf("%d delivery jobs, want one per recipient (%d) and the rerun", n, len(want))
	}
	for _, addr := range want {
		if n := emailsTo(e, addr, subject); n != 1 {
			t.Errorf("%s received the announcement %d times", addr, n)
		}
	}
	for _, addr := range unwanted {
		if n := emailsTo(e, addr, subject); n != 0 {
			t.Errorf("%s received the announcement", addr)
		}
	}
	mail := e.WaitMail("demo@demo.fr", subject, "La mairie sera fermée le 24 décembre.")
	unsubscribe := apptest.LinkIn(t, mail, e.URL("sistec.localhost", "/desabonnement/"))
	if !strings.HasSuffix(unsubscribe, "?liste=informations") || len(mail.Headers["List-Unsubscribe"]) == 0 ||
		!strings.Contains(mail.Headers["List-Unsubscribe"][0], unsubscribe) || strings.Contains(mail.HTML, "<b>Bonnes fêtes</b>") {
		t.Errorf("announcement email: link %s, headers %v", unsubscribe, mail.Headers["List-Unsubscribe"])
	}
	if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action = 'announcement.send' AND actor_kind = 'staff' AND actor_id = $1`, agent.ID); n != 1 {
		t.Errorf("%d announcement.send entries in the journal", n)
	}

	// Another commune's staff: 404.
	foreign := newStaff(t, e, "belcastel", "agent@belcastel.fr", staff.RoleAgent)
	fc, _ := staffLogin(t, e, "belcastel.localhost", foreign.Email, staffPassword)
	for _, path := range []string{"/admin/annonces/" + m[1], "/admin/annonces/" + m[1] + "/progression"} {
		if res, _ := fetch(t, fc, e.URL("belcastel.localhost", path)); res.StatusCode != 404 {
			t.Errorf("belcastel's agent on %s: %d", path, res.StatusCode)
		}
	}
}

// TestInformationEmailsSwitchInMesInformations: the resident's switch of
// the commune's information emails, apart from the alerts.
func TestInformationEmailsSwitchInMesInformations(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	c := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	_, body := fetch(t, c, e.URL("sistec.localhost", "/informations"))
	if !strings.Contains(body, `name="informations" type="checkbox" value="1" checked`) || !strings.Contains(body, "les informations diverses de la commune") {
		t.Fatalf("Mes informations lacks the information emails' switch:\n%s", body)
	}
	if res, _ := post(t, c, e.URL("sistec.localhost", "/informations/courriels"), url.Values{"alertes": {"1"}, "rappels": {"1"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	var alerts, reminders, announcements bool
	if err := e.App.DB.QueryRow(`SELECT a.invoice_alerts, a.due_reminders, a.announcements FROM accounts a JOIN tenants t ON t.id = a.tenant_id
		WHERE t.slug = 'sistec' AND a.email = 'demo@demo.fr'`).Scan(&alerts, &reminders, &announcements); err != nil {
		t.Fatal(err)
	}
	if !alerts || !reminders || announcements {
		t.Fatalf("after unticking the information emails: alerts %v, reminders %v, informations %v", alerts, reminders, announcements)
	}
	if _, body = fetch(t, c, e.URL("sistec.localhost", "/informations")); strings.Contains(body, `name="informations" type="checkbox" value="1" checked`) {
		t.Error("the page does not show the saved choice")
	}
}
