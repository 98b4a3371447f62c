package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// settingsData is the Paramètres form: what the commune may change itself
// (Form), what the operator manages (Tenant, read-only), and the version
// the form is based on.
type settingsData struct {
	Form    tenant.Settings
	Version int64
	Tenant  *tenant.Tenant
	Days    string // reminders.days_before as typed
}

// adminSettings is "Paramètres": contact, switches and reminders, which the
// commune changes itself; PayFiP and host names are shown read-only.
func (s *Server) adminSettings(c *gin.Context) {
	t, err := s.freshTenant(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderSettings(c, http.StatusOK, t, settingsData{Form: t.Settings(), Version: t.Version,
		Days: strconv.Itoa(t.RemindersDaysBefore)}, nil)
}

// freshTenant reads the request's commune from the database rather than
// the host cache: a form must start from the current version.
func (s *Server) freshTenant(c *gin.Context) (*tenant.Tenant, error) {
	return s.tenants.ByID(c.Request.Context(), tenant.FromContext(c.Request.Context()).ID)
}

func (s *Server) renderSettings(c *gin.Context, status int, t *tenant.Tenant, d settingsData, flashes []view.Flash) {
	d.Tenant = t
	p := s.staffPage(c, "parametres", "Paramètres", d)
	p.Tenant = t
	p.Flashes = append(p.Flashes, flashes...)
	s.render(c, status, "admin/settings.html", p)
}

// adminSettingsSave saves the Paramètres form through tenant.Service.
func (s *Server) adminSettingsSave(c *gin.Context) {
	t, err := s.freshTenant(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	next := t.Settings()
	next.Contact = tenant.Contact{
		Phone: strings.TrimSpace(c.PostForm("contact_phone")),
		Hours: strings.TrimSpace(c.PostForm("contact_hours")),
		Email: strings.TrimSpace(c.PostForm("contact_email")),
	}
	next.Features = tenant.Features{Paperless: checked(c, "paperless"), InvoiceAlerts: checked(c, "invoice_alerts")}
	days := strings.TrimSpace(c.PostForm("reminders_days_before"))
	n, convErr := strconv.Atoi(days)
	if convErr != nil {
		n = -1 // refused by the validation, with its message
	}
	next.Reminders = tenant.Reminders{Enabled: checked(c, "reminders_enabled"), DaysBefore: n}
	version := formVersion(c)
	_, err = s.TenantService.Update(c.Request.Context(), t.ID, version, next,
		tenant.GroupContact, tenant.GroupFeatures, tenant.GroupReminders)
	if flashes, ok := settingsRefusal(err); ok {
		// The form keeps what was typed; a stale one now names the current
		// version, so that saving again is a choice made knowingly.
		s.renderSettings(c, http.StatusUnprocessableEntity, t, settingsData{Form: next, Version: t.Version, Days: days}, flashes)
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "Les paramètres de la commune ont été enregistrés.")
	c.Redirect(http.StatusSeeOther, "/admin/parametres")
}
