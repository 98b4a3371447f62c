package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"portail/pkg/apptest"
	"portail/pkg/staff"
	"portail/pkg/web"
)

const staffPassword = "Trois chats sur le toit du lavoir"

// newStaff makes email a member of the commune of slug with role.
func newStaff(t *testing.T, e *apptest.Env, slug, email, role string) *staff.Member {
	t.Helper()
	ten, err := e.App.Tenants.BySlug(context.Background(), slug)
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.App.Staff.CreateMember(context.Background(), ten, email, "Agent "+role, staffPassword, role)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// staffLogin posts the staff login form and returns the client and where
// the answer sends it.
func staffLogin(t *testing.T, e *apptest.Env, host, email, password string) (*http.Client, string) {
	t.Helper()
	c := e.Client()
	res, body := post(t, c, e.URL(host, "/admin/connexion"), url.Values{"email": {email}, "password": {password}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("staff login %s: %d %s", email, res.StatusCode, body)
	}
	return c, res.Header.Get("Location")
}

var secretText = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(secret, at, totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// enrolAdmin walks an administrator's first login: the enrolment page,
// its secret read as text, a first code; it returns the secret.
func enrolAdmin(t *testing.T, e *apptest.Env, c *http.Client, host string) string {
	t.Helper()
	res, body := fetch(t, c, e.URL(host, "/admin/enrolement"))
	m := secretText.FindStringSubmatch(body)
	if res.StatusCode != 200 || m == nil || !strings.Contains(body, `src="data:image/png;base64,`) {
		t.Fatalf("enrolment page: %d %s", res.StatusCode, body)
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	res, body = post(t, c, e.URL(host, "/admin/enrolement"), url.Values{"code": {totpCode(t, secret, time.Now())}})
	if res.StatusCode != 200 || strings.Count(body, "<li>") < staff.RecoveryCodes || !strings.Contains(body, "Codes de secours") {
		t.Fatalf("enrolment: %d %s", res.StatusCode, body)
	}
	return secret
}

// An administrator without a second factor can reach nothing but its
// enrolment; then the whole back office of an admin.
func TestAdministratorEnrolsBeforeAnythingElse(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	newStaff(t, e, "sistec", "admin@sistec.fr", staff.RoleAdmin)
	c, next := staffLogin(t, e, "sistec.localhost", "ADMIN@sistec.fr", staffPassword)
	if next != "/admin/enrolement" {
		t.Fatalf("after the password: %s", next)
	}
	for _, path := range []string{"/admin", "/admin/journal", "/admin/profil", "/admin/equipe"} {
		res, _ := fetch(t, c, e.URL("sistec.localhost", path))
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/enrolement" {
			t.Errorf("%s before enrolment: %d %s", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	res, _ := post(t, c, e.URL("sistec.localhost", "/admin/equipe/invitations"), url.Values{"email": {"x@sistec.fr"}, "role": {"agent"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/enrolement" {
		t.Errorf("an action before enrolment: %d", res.StatusCode)
	}
	before := cookieOf(c, mustURL(e.URL("sistec.localhost", "/")), "portail_admin")
	enrolAdmin(t, e, c, "sistec.localhost")
	if after := cookieOf(c, mustURL(e.URL("sistec.localhost", "/")), "portail_admin"); after == before || after == "" {
		t.Error("the session kept its id past the second factor")
	}
	res, body := fetch(t, c, e.URL("sistec.localhost", "/admin"))
	if res.StatusCode != 200 || !strings.Contains(body, "Tableau de bord") || !strings.Contains(body, "Administrateur") {
		t.Fatalf("dashboard: %d %s", res.StatusCode, body)
	}
	for _, link := range []string{`href="/admin/journal"`, `href="/admin/equipe"`, `href="/admin/profil"`} {
		if !strings.Contains(body, link) {
			t.Errorf("an admin's menu lacks %s", link)
		}
	}
}

func TestSecondFactorCodeIsGoodOnce(t *testing.T) {
	var ahead atomic.Int64 // how far the portal's clock runs ahead
	portalNow := func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	e := apptest.Start(t, apptest.Options{Now: portalNow})
	newStaff(t, e, "sistec", "admin@sistec.fr", staff.RoleAdmin)
	c, _ := staffLogin(t, e, "sistec.localhost", "admin@sistec.fr", staffPassword)
	secret := enrolAdmin(t, e, c, "sistec.localhost")
	post(t, c, e.URL("sistec.localhost", "/admin/deconnexion"), nil)

	// The next time step: the enrolment's code is used up.
	ahead.Store(int64(30 * time.Second))
	c, next := staffLogin(t, e, "sistec.localhost", "admin@sistec.fr", staffPassword)
	if next != "/admin/second-facteur" {
		t.Fatalf("after the password: %s", next)
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.Header.Get("Location") != "/admin/second-facteur" {
		t.Fatalf("the dashboard before the code: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, body := post(t, c, e.URL("sistec.localhost", "/admin/second-facteur"), url.Values{"code": {"000000"}}); res.StatusCode != 422 || !strings.Contains(body, "Code incorrect") {
		t.Fatalf("wrong code: %d", res.StatusCode)
	}
	code := totpCode(t, secret, portalNow())
	if res, _ := post(t, c, e.URL("sistec.localhost", "/admin/second-facteur"), url.Values{"code": {code}}); res.StatusCode != 303 || res.Header.Get("Location") != "/admin" {
		t.Fatalf("right code: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 200 {
		t.Fatalf("dashboard after the code: %d", res.StatusCode)
	}
	// Someone who saw the code replays it within its window.
	thief, _ := staffLogin(t, e, "sistec.localhost", "admin@sistec.fr", staffPassword)
	if res, _ := post(t, thief, e.URL("sistec.localhost", "/admin/second-facteur"), url.Values{"code": {code}}); res.StatusCode != 422 {
		t.Fatalf("replayed code: %d", res.StatusCode)
	}
	if res, _ := fetch(t, thief, e.URL("sistec.localhost", "/admin")); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the replaying session reached the dashboard: %d", res.StatusCode)
	}
}

func TestStaffLoginIsThrottled(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c := e.Client()
	for i := range 10 {
		res, body := post(t, c, e.URL("sistec.localhost", "/admin/connexion"), url.Values{"email": {"agent@sistec.fr"}, "password": {"pas le bon"}})
		if res.StatusCode == http.StatusTooManyRequests {
			if i < 3 || res.Header.Get("Retry-After") == "" || !strings.Contains(body, "Trop de tentatives. Veuillez réessayer dans") {
				t.Fatalf("throttled after %d failures: %q %s", i, res.Header.Get("Retry-After"), body)
			}
			// Even the right password waits.
			if res, _ := post(t, c, e.URL("sistec.localhost", "/admin/connexion"), url.Values{"email": {"agent@sistec.fr"}, "password": {staffPassword}}); res.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("right password during the delay: %d", res.StatusCode)
			}
			return
		}
		if res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "Adresse mail ou mot de passe incorrect.") {
			t.Fatalf("wrong password: %d", res.StatusCode)
		}
	}
	t.Fatal("10 wrong passwords, never throttled")
}

// A role change or a deactivation applies at the member's very next
// request; an agent calling an admin URL gets 403.
func TestRoleChangeAndDeactivationApplyAtTheNextRequest(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	m := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, next := staffLogin(t, e, "sistec.localhost", m.Email, staffPassword)
	if next != "/admin" {
		t.Fatalf("an agent without TOTP: %s", next)
	}
	res, body := fetch(t, c, e.URL("sistec.localhost", "/admin"))
	if res.StatusCode != 200 || strings.Contains(body, `href="/admin/journal"`) || strings.Contains(body, `href="/admin/equipe"`) {
		t.Fatalf("an agent's dashboard: %d, admin links shown: %s", res.StatusCode, body)
	}
	for _, path := range []string{"/admin/journal", "/admin/equipe"} {
		if res, body := fetch(t, c, e.URL("sistec.localhost", path)); res.StatusCode != 403 || !strings.Contains(body, "Accès refusé") {
			t.Errorf("agent on %s: %d", path, res.StatusCode)
		}
	}
	if _, err := e.App.DB.Exec(`UPDATE staff_memberships SET role = 'admin' WHERE staff_user_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	// Now an admin without a second factor: sent to the enrolment.
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin/journal")); res.Header.Get("Location") != "/admin/enrolement" {
		t.Fatalf("promoted to admin: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.App.DB.Exec(`UPDATE staff_memberships SET role = 'viewer' WHERE staff_user_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 200 {
		t.Fatalf("as a viewer: %d", res.StatusCode)
	}
	if _, err := e.App.DB.Exec(`UPDATE staff_memberships SET status = 'disabled' WHERE staff_user_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 303 || res.Header.Get("Location") != "/admin/connexion" {
		t.Fatalf("deactivated: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, err := e.App.DB.Exec(`UPDATE staff_memberships SET status = 'active' WHERE staff_user_id = $1`, m.ID); err != nil {
		t.Fatal(err)
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 303 {
		t.Fatalf("a session ended by the deactivation came back: %d", res.StatusCode)
	}
}

// A viewer posting a form of the back office gets 403 and nothing changes.
func TestViewerPostsChangeNothing(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	newStaff(t, e, "sistec", "admin@sistec.fr", staff.RoleAdmin)
	agent := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	viewer := newStaff(t, e, "sistec", "lecteur@sistec.fr", staff.RoleViewer)
	c, _ := staffLogin(t, e, "sistec.localhost", viewer.Email, staffPassword)
	for path, form := range map[string]url.Values{
		"/admin/equipe/invitations":        {"email": {"intrus@sistec.fr"}, "role": {"admin"}},
		"/admin/equipe/" + itoa(agent.ID):  {"action": {"role"}, "role": {"viewer"}},
		"/admin/equipe/" + itoa(viewer.ID): {"action": {"role"}, "role": {"admin"}},
	} {
		if res, body := post(t, c, e.URL("sistec.localhost", path), form); res.StatusCode != 403 || !strings.Contains(body, "Accès refusé") {
			t.Errorf("viewer POST %s: %d", path, res.StatusCode)
		}
	}
	if n := countRows(t, e, `SELECT count(*) FROM staff_tokens`); n != 0 {
		t.Errorf("%d invitations made by a viewer", n)
	}
	if n := countRows(t, e, `SELECT count(*) FROM staff_memberships WHERE role = 'admin'`); n != 1 {
		t.Errorf("%d admins after a viewer's posts", n)
	}
	if n := countRows(t, e, `SELECT count(*) FROM staff_memberships WHERE staff_user_id = $1 AND role = 'agent'`, agent.ID); n != 1 {
		t.Error("the agent's role changed")
	}
}

// Sessions do not cross: a staff session of one commune is void on
// another's host, a resident's session opens no staff page, a staff
// session no resident page.
func TestStaffAndResidentSessionsStayApart(t *testing.T) {
	e := apptest.Start(t, apptest.Options{Demo: true})
	m := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, "sistec.localhost", m.Email, staffPassword)
	raw := cookieOf(c, mustURL(e.URL("sistec.localhost", "/")), "portail_admin")
	if raw == "" {
		t.Fatal("no staff cookie")
	}
	req, _ := http.NewRequest("GET", e.URL("belcastel.localhost", "/admin"), nil)
	req.AddCookie(&http.Cookie{Name: "portail_admin", Value: raw})
	res, err := e.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/connexion" {
		t.Fatalf("sistec's staff session on belcastel: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// The staff cookie on the residents' pages is nobody's session.
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/accueil")); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("staff session on a resident's page: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	activateWithPassword(t, e, "sistec.localhost", "demo@demo.fr", strongPassword)
	resident := login(t, e, "sistec.localhost", "demo@demo.fr", strongPassword, true)
	if res, _ := fetch(t, resident, e.URL("sistec.localhost", "/admin")); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/connexion" {
		t.Fatalf("resident session on /admin: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// The resident's password is no staff password either.
	if res, _ := post(t, e.Client(), e.URL("sistec.localhost", "/admin/connexion"), url.Values{"email": {"demo@demo.fr"}, "password": {strongPassword}}); res.StatusCode != 401 {
		t.Fatalf("resident credentials on the staff login: %d", res.StatusCode)
	}
	// The staff cookie is its own: HttpOnly, SameSite=Strict.
	res, _ = post(t, e.Client(), e.URL("sistec.localhost", "/admin/connexion"), url.Values{"email": {m.Email}, "password": {staffPassword}})
	ck := res.Header.Get("Set-Cookie")
	if !strings.HasPrefix(ck, "portail_admin=") || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") {
		t.Fatalf("staff cookie %q", ck)
	}
}

func TestStaffSessionIdleTimeout(t *testing.T) {
	var offset atomic.Int64 // how far the portal's clock is ahead
	e := apptest.Start(t, apptest.Options{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	m := newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, "sistec.localhost", m.Email, staffPassword)
	offset.Store(int64(14 * time.Minute))
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 200 {
		t.Fatalf("after 14 minutes: %d", res.StatusCode)
	}
	offset.Store(int64(30*time.Minute + time.Second))
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 303 || res.Header.Get("Location") != "/admin/connexion" {
		t.Fatalf("after 16 idle minutes: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestStaffCrossOriginPostRefused(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	newStaff(t, e, "sistec", "agent@sistec.fr", staff.RoleAgent)
	c, _ := staffLogin(t, e, "sistec.localhost", "agent@sistec.fr", staffPassword)
	for _, path := range []string{"/admin/connexion", "/admin/profil/mot-de-passe", "/admin/deconnexion"} {
		req, _ := http.NewRequest("POST", e.URL("sistec.localhost", path), strings.NewReader("current=x&password=y&confirm=y"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d, want 403", path, res.StatusCode)
		}
	}
	if res, _ := fetch(t, c, e.URL("sistec.localhost", "/admin")); res.StatusCode != 200 {
		t.Fatalf("the cross-site logout ended the session: %d", res.StatusCode)
	}
}

// Every route under /admin is either one of the public staff pages, listed
// explicitly, or registered with a permission the policy grants.
func TestEveryStaffRouteStatesAKnownPermission(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	perms := e.App.Web.StaffRoutePermissions()
	public := web.PublicStaffRoutes()
	var seen []string
	for _, r := range e.App.Web.Routes() {
		_, path, _ := strings.Cut(r, " ")
		if path != "/admin" && !strings.HasPrefix(path, "/admin/") {
			continue
		}
		seen = append(seen, r)
		perm, ok := perms[r]
		switch {
		case slices.Contains(public, r):
			if ok {
				t.Errorf("%s is listed public but has a permission", r)
			}
		case !ok:
			t.Errorf("%s has no permission", r)
		case !e.App.Policy.Known(perm):
			t.Errorf("%s requires %q, which the policy lacks", r, perm)
		}
	}
	for _, r := range public {
		if !slices.Contains(seen, r) {
			t.Errorf("public staff route %s is not routed", r)
		}
	}
	if len(seen) < len(public)+5 {
		t.Fatalf("only %d staff routes seen: %v", len(seen), seen)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// An administrator invites an agent from "Équipe"; the link, caught by
// email, lets them choose a password and lands them in the back office.
func TestInvitationFromTheTeamPage(t *testing.T) {
	e := apptest.Start(t, apptest.Options{})
	newStaff(t, e, "sistec", "admin@sistec.fr", staff.RoleAdmin)
	admin, _ := staffLogin(t, e, "sistec.localhost", "admin@sistec.fr", staffPassword)
	enrolAdmin(t, e, admin, "sistec.localhost")
	res, body := post(t, admin, e.URL("sistec.localhost", "/admin/equipe/invitations"), url.Values{"email": {"pas une adresse"}, "role": {"agent"}})
	if res.StatusCode != 422 || !strings.Contains(body, "n&#39;est pas valide") {
		t.Fatalf("bad address: %d %s", res.StatusCode, body)
	}
	res, _ = post(t, admin, e.URL("sistec.localhost", "/admin/equipe/invitations"),
		url.Values{"email": {"Nouvel.Agent@sistec.fr"}, "name": {"Nouvel Agent"}, "role": {"agent"}})
	if res.StatusCode != 303 {
		t.Fatalf("invite: %d", res.StatusCode)
	}
	if _, body := fetch(t, admin, e.URL("sistec.localhost", "/admin/equipe")); !strings.Contains(body, "Une invitation a été envoyée à Nouvel.Agent@sistec.fr") {
		t.Fatalf("no confirmation: %s", body)
	}
	m := e.WaitMail("nouvel.agent@sistec.fr", "Invitation à l'espace des agents", "Agent", "72 heures")
	link := apptest.LinkIn(t, m, e.URL("sistec.localhost", "/admin/invitation/"))
	invitee := e.Client()
	res, body = fetch(t, invitee, link)
	if res.StatusCode != 200 || !strings.Contains(body, "nouvel.agent@sistec.fr") || !strings.Contains(body, `value="Nouvel Agent"`) ||
		res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("invitation page: %d %s", res.StatusCode, body)
	}
	res, body = post(t, invitee, link, url.Values{"name": {"Nouvel Agent"}, "password": {"trop court"}, "confirm": {"trop court"}})
	if res.StatusCode != 422 || !strings.Contains(body, "au moins 12 caractères") {
		t.Fatalf("short password: %d %s", res.StatusCode, body)
	}
	res, _ = post(t, invitee, link, url.Values{"name": {"Nouvel Agent"}, "password": {staffPassword}, "confirm": {staffPassword}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/admin" {
		t.Fatalf("accept: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, body := fetch(t, invitee, e.URL("sistec.localhost", "/admin")); res.StatusCode != 200 || !strings.Contains(body, "Nouvel Agent") || !strings.Contains(body, "Agent") {
		t.Fatalf("the new agent's dashboard: %d", res.StatusCode)
	}
	if res, _ := fetch(t, e.Client(), link); res.StatusCode != http.StatusGone {
		t.Fatalf("the used link: %d", res.StatusCode)
	}
	if got := lastEntry(t, e, "staff.invitation.accepted"); got.ActorKind != "staff" || got.IP != "127.0.0.1" {
		t.Fatalf("acceptance journaled as %+v", got)
	}
}
