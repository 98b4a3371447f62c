package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/staff"
)

const formBody = 64 << 10 // forms: 64 KiB is plenty

// routes is the route table. Each route says who may use it: platform
// probes (any host), public (anyone on a commune's host), resident (a
// logged-in resident of that commune), or staff (a member of that
// commune's staff whose role has the route's permission: staffRoutes).
func (s *Server) routes() {
	e := s.engine
	e.Use(s.observeRequests)
	e.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		s.log.Error("panic", "error", err, "path", c.Request.URL.Path)
		c.AbortWithStatus(http.StatusInternalServerError)
	}))
	e.Use(requestID(), logRequests(s.log), anonymousActor, securityHeaders(payfipOrigins(s.cfg.PayFiP.ClassicURL, s.cfg.PayFiP.WSPaymentURL), s.secure()))

	// platform
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/static/*file", s.static)

	// api: billing software of the Host's commune, with its API key
	api := e.Group("/api/v1", s.resolveTenant, s.apiAuth, apiText)
	api.PUT("/payers/:reference", apiLimit(apiJSONBody), s.apiPutPayer)
	api.PUT("/invoices/:number", apiLimit(apiJSONBody), s.apiPutInvoice)
	api.GET("/invoices/:number", s.apiGetInvoice)
	api.PUT("/invoices/:number/pdf", apiLimit(apiPDFBody), s.apiPutInvoicePDF)
	api.POST("/imports/payers", apiLimit(apiImportPayersBody), s.apiPostImport(imports.KindPayers))
	api.POST("/imports/invoices", apiLimit(apiImportInvoicesBody), s.apiPostImport(imports.KindInvoices))
	api.GET("/imports/:id", s.apiGetImport)
	e.GET("/api/v1/openapi.yaml", s.openapi) // public

	// Everything else belongs to the commune of the Host header.

	// The commune's assets: public and cacheable by shared caches, so the
	// resident is not looked up (a remember-me cookie would open a session
	// and rotate its token on an answer a cache may keep).
	assets := e.Group("/", s.resolveTenant)
	assets.GET("/theme.css", s.themeCSS)
	assets.GET("/logo", s.logo)

	t := e.Group("/", s.resolveTenant, s.readForm(formBody), s.loadResident)

	// public
	t.GET("/accessibilite", s.accessibility)
	t.GET("/donnees-personnelles", s.privacyPage)
	t.GET("/compte-ferme", s.accountClosedPage)
	t.GET("/", noStore, s.loginPage)
	t.POST("/connexion", noStore, s.login)
	t.GET("/activation", noStore, s.activationPage)
	t.POST("/activation", noStore, s.rateLimit("activation-ip", 30, time.Hour), s.activate)
	t.GET("/activation/:token", tokenPage, s.passwordSetPage)
	t.POST("/activation/:token", tokenPage, s.passwordSet)
	t.GET("/mot-de-passe-oublie", noStore, s.forgotPage)
	t.POST("/mot-de-passe-oublie", noStore, s.forgot)
	t.GET("/mot-de-passe/:token", tokenPage, s.passwordSetPage)
	t.POST("/mot-de-passe/:token", tokenPage, s.passwordSet)
	t.GET("/adresse/:token", tokenPage, s.emailConfirmPage)
	t.POST("/adresse/:token", tokenPage, s.emailConfirm)
	t.GET("/desabonnement/:token", tokenPage, s.unsubscribePage)
	t.POST("/desabonnement/:token", tokenPage, s.unsubscribe)
	t.POST("/deconnexion", noStore, s.logout)
	// Generous: PayFiP itself calls from few addresses; this only stops floods
	// of forged results, each of which is audited.
	payfipLimit := s.rateLimit("payfip-return", 600, time.Minute)
	t.GET("/paiement/retour", noStore, payfipLimit, s.payReturnWS)
	t.GET("/paiement/retour-classique", noStore, payfipLimit, s.payReturnClassic)
	t.POST("/paiement/retour-classique", noStore, payfipLimit, s.payReturnClassic)
	t.POST("/paiement/notification", payfipLimit, s.payNotification)

	// resident
	r := t.Group("/", requireResident)
	r.GET("/accueil", s.home)
	r.POST("/information-lue", s.closeNotice)
	r.GET("/informations", s.informations)
	r.POST("/informations/papier", s.setPaperless)
	r.POST("/informations/courriels", s.setEmailChoices)
	r.GET("/informations/adresse", s.emailChangePage)
	r.POST("/informations/adresse", s.emailChange)
	r.GET("/informations/mot-de-passe", s.passwordChangePage)
	r.POST("/informations/mot-de-passe", s.passwordChange)
	r.GET("/informations/donnees", s.dataDownload)
	r.GET("/informations/fermeture", s.accountClosePage)
	r.POST("/informations/fermeture", s.accountClose)
	r.GET("/factures", s.invoices)
	r.GET("/factures/:id", s.invoiceDetail)
	r.POST("/factures/:id/reglee", s.declarePaid)
	r.GET("/factures/:id/pdf", s.invoicePDF)
	r.GET("/paiement", s.paySelect)
	r.GET("/paiement/informations", s.payInfo)
	r.POST("/paiement", s.payStart)
	r.GET("/paiements", s.payments)
	r.GET("/paiements/:id/attestation", s.paymentReceipt)
	r.GET("/contact", s.contactPage)
	r.POST("/contact", s.contact)

	s.staffRoutes(e)

	e.NoRoute(s.resolveTenant, s.notFound)
}

// staffRoutes is the back office of the Host's commune, under /admin, with
// its own session (loadStaff). Its public pages are the login and the
// pages of emailed links; every other route states its permission where
// it is registered (staffRoutes), checked with Casbin against the role
// the member holds in this commune now.
func (s *Server) staffRoutes(e *gin.Engine) {
	a := e.Group("/admin", s.resolveTenant, s.readForm(formBody), s.loadStaff)

	// public staff pages: publicStaffRoutes lists them
	a.GET("/connexion", s.adminLoginPage)
	a.POST("/connexion", s.adminLogin)
	a.GET("/second-facteur", s.adminSecondFactorPage)
	a.POST("/second-facteur", s.adminSecondFactor)
	a.GET("/mot-de-passe-oublie", s.adminForgotPage)
	a.POST("/mot-de-passe-oublie", s.adminForgot)
	a.GET("/mot-de-passe/:token", tokenPage, s.adminResetPage)
	a.POST("/mot-de-passe/:token", tokenPage, s.adminReset)
	a.GET("/invitation/:token", tokenPage, s.adminInvitationPage)
	a.POST("/invitation/:token", tokenPage, s.adminInvitation)
	a.POST("/deconnexion", s.adminLogout)

	// staff: each route with its permission
	r := staffRoutes{s: s, g: a, stages: []staff.Stage{staff.StageReady}}
	r.duringEnrolment().GET("/enrolement", "profile:manage", s.adminEnrolmentPage)
	r.duringEnrolment().POST("/enrolement", "profile:manage", s.adminEnrolment)
	r.GET("", "dashboard:read", s.adminDashboard)
	r.GET("/profil", "profile:manage", s.adminProfile)
	r.POST("/profil/mot-de-passe", "profile:manage", s.adminPasswordChange)
	r.POST("/profil/second-facteur/desactiver", "profile:manage", s.adminDisableTOTP)
	r.POST("/profil/codes-de-secours", "profile:manage", s.adminRecoveryCodes)
	// Redevables, Factures, Dématérialisation
	r.GET("/redevables", "payers:read", s.adminPayers)
	r.GET("/redevables/:id", "payers:read", s.adminPayer)
	r.POST("/redevables/:id/activation", "payers:write", s.adminPayerActivation)
	r.POST("/redevables/:id/compte", "payers:write", s.adminPayerState)
	r.GET("/factures", "invoices:read", s.adminInvoices)
	r.GET("/factures/export.csv", "invoices:export", s.adminInvoicesExport)
	r.GET("/factures/:id", "invoices:read", s.adminInvoice)
	r.POST("/factures/:id/etat", "invoices:write", s.adminInvoiceChange("etat"))
	r.POST("/factures/:id/prelevement", "invoices:write", s.adminInvoiceChange("prelevement"))
	r.POST("/factures/:id/paiement-en-ligne", "invoices:write", s.adminInvoiceChange("paiement-en-ligne"))
	r.GET("/dematerialisation", "paperless:read", s.adminPaperless)
	r.GET("/dematerialisation/export.csv", "paperless:export", s.adminPaperlessExport)

	r.GET("/journal", "audit:read", s.adminJournal)
	r.GET("/equipe", "staff:manage", s.adminTeam)
	r.POST("/equipe/invitations", "staff:manage", s.adminInvite)
	r.POST("/equipe/:id", "staff:manage", s.adminTeamMember)

	// Messages, Annonces, Clés d'API
	r.GET("/messages", "messages:read", s.adminMessages)
	r.GET("/messages/:id", "messages:read", s.adminThread)
	r.POST("/messages/:id/reponse", "messages:write", s.adminThreadReply)
	r.POST("/messages/:id/etat", "messages:write", s.adminThreadState)
	r.GET("/annonces", "announcements:read", s.adminAnnouncements)
	r.GET("/annonces/nouvelle", "announcements:write", s.adminAnnouncementNew)
	r.POST("/annonces/apercu", "announcements:write", s.adminAnnouncementPreview)
	r.POST("/annonces", "announcements:write", s.adminAnnouncementSend)
	r.GET("/annonces/:id", "announcements:read", s.adminAnnouncement)
	r.GET("/annonces/:id/progression", "announcements:read", s.adminAnnouncementProgress)
	r.GET("/cles-api", "apikeys:manage", s.adminAPIKeys)
	r.POST("/cles-api", "apikeys:manage", s.adminAPIKeyCreate)
	r.POST("/cles-api/:id/revocation", "apikeys:manage", s.adminAPIKeyRevoke)

	// Paramètres, Textes, and the switch of every online payment
	r.GET("/parametres", "settings:write", s.adminSettings)
	r.POST("/parametres", "settings:write", s.adminSettingsSave)
	r.GET("/parametres/paiements", "commune_payments:suspend", s.adminPaymentsSwitch)
	r.POST("/parametres/paiements", "commune_payments:suspend", s.adminPaymentsSwitchSave)
	r.GET("/textes", "texts:read", s.adminTexts)
	r.POST("/textes", "texts:write", s.adminTextsSave)

	// Imports, Paiements (the dashboard is "" above). Uploads stream their
	// body to the import pipeline: their group does not parse forms.
	r.GET("/imports", "imports:read", s.adminImports)
	r.GET("/imports/:id", "imports:read", s.adminImport)
	r.GET("/imports/:id/avancement", "imports:read", s.adminImportProgress)
	uploads := staffRoutes{s: s, g: e.Group("/admin", s.resolveTenant, s.loadStaff), stages: r.stages}
	uploads.POST("/imports/redevables", "imports:write", s.adminImportUpload("redevables"))
	uploads.POST("/imports/factures", "imports:write", s.adminImportUpload("factures"))
	r.GET("/paiements", "payments:read", s.adminPayments)
	r.GET("/paiements/export", "payments:export", s.adminPaymentsExport)
	r.GET("/paiements/:id", "payments:read", s.adminPayment)
}

// PublicStaffRoutes are the routes under /admin open without a staff
// session (each checks what it needs itself: the login, the second
// factor's session, an emailed link's token).
func PublicStaffRoutes() []string {
	return []string{
		"GET /admin/connexion", "POST /admin/connexion",
		"GET /admin/second-facteur", "POST /admin/second-facteur",
		"GET /admin/mot-de-passe-oublie", "POST /admin/mot-de-passe-oublie",
		"GET /admin/mot-de-passe/:token", "POST /admin/mot-de-passe/:token",
		"GET /admin/invitation/:token", "POST /admin/invitation/:token",
		"POST /admin/deconnexion",
	}
}
