package web_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"portail/pkg/apptest"
	"portail/pkg/staff"
)

var threadLink = regexp.MustCompile(`href="/admin/messages/(\d+)"`)

// TestStaffReplyReachesItsResidentOnly: a resident writes through
// "Contact" (with HTML in the message), an agent finds it in Messages,
// shown escaped, unread first, and replies. The reply reaches the resident
// by email and shows on their Contact page as a thread, not on another
// resident's; closing the thread takes it out of the open ones. Another
// commune's staff cannot see or answer it; a viewer reads but cannot
// reply, close or mark it (403, nothing changed). Every change is
// journaled.
func TestStaffReplyReachesItsResidentOnly(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	activateWithPassword(t, e, "sistec.localhost", "marie.durand@demo.fr", strongPassword)
	resident := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, false)
	other := login(t, e, "sistec.localhost", "marie.durand@demo.fr", strongPassword, false)

	const script = `<script>alert("xss")</script>`
	res, _ := post(t, resident, e.URL("sistec.localhost", "/contact"), url.Values{
		"subject": {"Facture de juillet " + script}, "body": {"Bonjour,\nj'ai déjà payé.\n" + script}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("contact: %d", res.StatusCode)
	}
	// Another resident's older message, already read: listed after it.
	post(t, other, e.URL("sistec.localhost", "/contact"), url.Values{"subject": {"Question de Marie"}, "body": {"Mon message à moi."}})
	if _, err := e.App.DB.Exec(`UPDATE message_threads SET unread = 0, last_message_at = now() + interval '1 minute' WHERE subject = 'Question de Marie'`); err != nil {
		t.Fatal(err)
	}

	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, "sistec.localhost", agent.Email, staffPassword)
	res, body := fetch(t, c, e.URL("sistec.localhost", "/admin/messages"))
	if res.StatusCode != 200 || !strings.Contains(body, `href="/admin/messages"`) || !strings.Contains(body, "1 non lu") {
		t.Fatalf("inbox: %d\n%s", res.StatusCode, body)
	}
	if strings.Contains(body, script) || !strings.Contains(body, "&lt;script&gt;") {
		t.Fatal("a resident's subject is not escaped in the inbox")
	}
	if first, second := strings.Index(body, "Test SISTEC560"), strings.Index(body, "Marie DURAND"); first < 0 || second < 0 || first > second {
		t.Errorf("the unread thread is not listed first (%d, %d)", first, second)
	}
	if _, body := fetch(t, c, e.URL("sistec.localhost", "/admin/messages?redevable=durand")); strings.Contains(body, "Test SISTEC560") || !strings.Contains(body, "Marie DURAND") {
		t.Error("the search by payer does not filter")
	}
	m := threadLink.FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no thread link in the inbox")
	}
	var id string
	e.App.DB.QueryRow(`SELECT id::text FROM message_threads WHERE subject LIKE 'Facture de juillet%'`).Scan(&id)
	thread := e.URL("sistec.localhost", "/admin/messages/"+id)
	res, body = fetch(t, c, thread)
	if res.StatusCode != 200 || strings.Contains(body, script) || !strings.Contains(body, "j&#39;ai déjà payé.\n&lt;script&gt;") {
		t.Fatalf("thread page: %d, body not shown escaped:\n%s", res.StatusCode, body)
	}

	// Another commune's staff: 404 on every URL of the thread.
	foreign := newStaff(t, e, "belcastel", "agent@belcastel.fr", staff.RoleAgent)
	fc, _ := staffLogin(t, e, "belcastel.localhost", foreign.Email, staffPassword)
	if res, _ := fetch(t, fc, e.URL("belcastel.localhost", "/admin/messages/"+id)); res.StatusCode != 404 {
		t.Errorf("belcastel's agent on sistec's thread: %d", res.StatusCode)
	}
	if res, _ := post(t, fc, e.URL("belcastel.localhost", "/admin/messages/"+id+"/reponse"), url.Values{"body": {"intrus"}}); res.StatusCode != 404 {
		t.Errorf("belcastel's agent replying to sistec's thread: %d", res.StatusCode)
	}
	if res, _ := post(t, fc, e.URL("belcastel.localhost", "/admin/messages/"+id+"/etat"), url.Values{"action": {"close"}}); res.StatusCode != 404 {
		t.Errorf("belcastel's agent closing sistec's thread: %d", res.StatusCode)
	}

	// A viewer reads, changes nothing.
	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	vc, _ := staffLogin(t, e, "sistec.localhost", viewer.Email, staffPassword)
	if res, body := fetch(t, vc, thread); res.StatusCode != 200 || strings.Contains(body, "Envoyer la réponse") || strings.Contains(body, "Clore la conversation") {
		t.Errorf("viewer's thread page: %d (reply or close offered)", res.StatusCode)
	}
	for path, form := range map[string]url.Values{
		"/reponse": {"body": {"réponse d'un lecteur"}},
		"/etat":    {"action": {"close"}},
	} {
		if res, _ := post(t, vc, thread+path, form); res.StatusCode != 403 {
			t.Errorf("viewer POST %s: %d", path, res.StatusCode)
		}
	}
	if res, _ := post(t, vc, thread+"/etat", url.Values{"action": {"read"}}); res.StatusCode != 403 {
		t.Errorf("viewer marks read: %d", res.StatusCode)
	}
	if n := countRows(t, e, `SELECT count(*) FROM messages WHERE direction = 'staff'`); n != 0 {
		t.Fatalf("%d replies after refused posts", n)
	}
	if n := countRows(t, e, `SELECT count(*) FROM message_threads WHERE status = 'closed' OR (unread = 0 AND subject LIKE 'Facture%')`); n != 0 {
		t.Fatal("a refused post changed the thread")
	}

	// An empty reply is refused, tied to its field, keeping nothing.
	res, body = post(t, c, thread+"/reponse", url.Values{"body": {"   "}})
	if res.StatusCode != 422 || !strings.Contains(body, "Veuillez saisir votre réponse.") || !strings.Contains(body, `aria-describedby="message"`) {
		t.Fatalf("empty reply: %d", res.StatusCode)
	}
	const reply = "Bonjour,\nnous avons bien reçu votre paiement. <b>Merci</b>"
	res, _ = post(t, c, thread+"/reponse", url.Values{"body": {reply}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply: %d", res.StatusCode)
	}
	_, body = fetch(t, c, thread)
	if !strings.Contains(body, "Votre réponse a été envoyée") || !strings.Contains(body, "Réponse de Agent agent") ||
		!strings.Contains(body, "&lt;b&gt;Merci&lt;/b&gt;") {
		t.Fatalf("thread after the reply:\n%s", body)
	}
	if strings.Contains(body, `<span class="tag">non lu</span>`) || !strings.Contains(body, "Marquer comme non lue") {
		t.Error("the replied thread is still unread")
	}

	// The resident's email.
	mail := e.WaitMail("demo@demo.fr", "Réponse à votre message", "nous avons bien reçu votre paiement.")
	if !strings.Contains(mail.Text, e.URL("sistec.localhost", "/contact")) || !strings.Contains(mail.HTML, "MAIRIE DE SISTEC") {
		t.Errorf("reply email lacks the Contact link or the commune's branding:\n%s", mail.Text)
	}
	if strings.Contains(mail.HTML, "<b>Merci</b>") {
		t.Error("the reply's HTML is not escaped in the email")
	}
	// The resident's Contact page: the thread, in order, with its reply.
	_, body = fetch(t, resident, e.URL("sistec.localhost", "/contact"))
	mine, answer := strings.Index(body, "j&#39;ai déjà payé."), strings.Index(body, "nous avons bien reçu votre paiement.")
	if mine < 0 || answer < mine || !strings.Contains(body, "Mes échanges avec le service") || !strings.Contains(body, "Réponse du service") {
		t.Fatalf("resident's Contact page lacks the thread in order (%d, %d):\n%s", mine, answer, body)
	}
	if !strings.Contains(body, "Contacter le service") || !strings.Contains(body, "Informations générales") || strings.Contains(body, script) {
		t.Error("the Contact page lost its form or shows HTML unescaped")
	}
	// Not on another resident's page.
	_, body = fetch(t, other, e.URL("sistec.localhost", "/contact"))
	if strings.Contains(body, "nous avons bien reçu votre paiement.") || strings.Contains(body, "Facture de juillet") || !strings.Contains(body, "Mon message à moi.") {
		t.Error("another resident's Contact page shows this thread, or not their own")
	}
	for _, m := range e.Mail.Messages() {
		if strings.Contains(m.Text, "nous avons bien reçu votre paiement.") && (len(m.To) != 1 || m.To[0] != "demo@demo.fr") {
			t.Errorf("the reply went to %v", m.To)
		}
	}

	// Closing: out of the open threads, listed with the closed ones.
	if res, _ := post(t, c, thread+"/etat", url.Values{"action": {"close"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("close: %d", res.StatusCode)
	}
	if _, body := fetch(t, c, e.URL("sistec.localhost", "/admin/messages")); strings.Contains(body, "Facture de juillet") {
		t.Error("a closed thread is listed with the open ones")
	}
	if _, body := fetch(t, c, e.URL("sistec.localhost", "/admin/messages?etat=closed")); !strings.Contains(body, "Facture de juillet") {
		t.Error("a closed thread is not listed with the closed ones")
	}
	for _, action := range []string{"message.reply", "message.thread.closed"} {
		if n := countRows(t, e, `SELECT count(*) FROM audit_log WHERE action = $1 AND actor_kind = 'staff' AND actor_id = $2`, action, agent.ID); n != 1 {
			t.Errorf("%d %s entries in the journal", n, action)
		}
	}
}
