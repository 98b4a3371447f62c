package web

import (
	"bytes"
	"encoding/base64"
	"html/template"
	"image/png"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/staff"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// totpFlag holds, in the staff session, the secret of an enrolment in
// progress: shown until a first code confirms it.
const totpFlag = "totp_secret"

type enrolmentData struct {
	Required bool   // an administrator's first login: nothing else before
	Secret   string // grouped by four, as typed into an app
	QR       template.URL
}

type recoveryCodesData struct {
	Codes []string
	Next  string
}

// adminEnrolmentPage shows a new TOTP secret as text and as a QR code
// (a PNG inline as a data: URI, which the CSP allows) and asks a first
// code. Administrators come here right after their password until they
// have enrolled; others from their profile.
func (s *Server) adminEnrolmentPage(c *gin.Context) {
	m := staffOf(c)
	if m.TOTPEnrolled {
		s.staffFlash(c, "Un second facteur est déjà enregistré pour votre compte.")
		c.Redirect(http.StatusSeeOther, "/admin/profil")
		return
	}
	secret := m.Flags[totpFlag]
	if secret == "" {
		var err error
		if secret, err = staff.NewTOTPSecret(m.Email); err != nil {
			s.fail(c, err)
			return
		}
		if err := s.StaffSessions.SetFlag(c.Request.Context(), m.TenantID, m.SessionID, totpFlag, secret); err != nil {
			s.fail(c, err)
			return
		}
	}
	s.renderEnrolment(c, http.StatusOK, secret, "")
}

func (s *Server) renderEnrolment(c *gin.Context, status int, secret, problem string) {
	m := staffOf(c)
	key, err := staff.TOTPKey(m.Email, secret)
	if err != nil {
		s.fail(c, err)
		return
	}
	img, err := key.Image(220, 220)
	if err != nil {
		s.fail(c, err)
		return
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		s.fail(c, err)
		return
	}
	d := enrolmentData{Required: m.Stage() == staff.StageEnrol, Secret: groupsOf(secret, 4),
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes()))}
	p := s.staffPage(c, "profil", "Second facteur d'authentification", d)
	if problem != "" {
		p.Flashes = append(p.Flashes, view.Flash{Kind: "error", Text: problem})
	}
	s.render(c, status, "admin/enrolment.html", p)
}

// adminEnrolment confirms the secret with a first code, then shows the
// recovery codes, once. The session is replaced by a new one past the
// second factor.
func (s *Server) adminEnrolment(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	m := staffOf(c)
	secret := m.Flags[totpFlag]
	if secret == "" || m.TOTPEnrolled {
		c.Redirect(http.StatusSeeOther, "/admin/enrolement")
		return
	}
	codes, err := s.Staff.ConfirmTOTP(c.Request.Context(), t, m.ID, secret, c.PostForm("code"))
	if msg, status, ok := staffRefusal(c, err); ok {
		s.renderEnrolment(c, status, secret, msg)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	raw, err := s.StaffSessions.Elevate(c.Request.Context(), t.ID, m.ID, m.SessionID)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.setStaffCookie(c, raw)
	now := time.Now()
	m.SessionID, m.TOTPEnrolled, m.SecondFactorAt = raw, true, &now
	s.render(c, http.StatusOK, "admin/recovery_codes.html", s.staffPage(c, "profil", "Codes de secours",
		recoveryCodesData{Codes: codes, Next: "/admin"}))
}

// groupsOf writes s in groups of n characters, for reading and typing.
func groupsOf(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s); i += n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+n, len(s))])
	}
	return b.String()
}
