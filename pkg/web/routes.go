package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
)

const formBody = 64 << 10 // forms: 64 KiB is plenty

// routes is the route table. Each route says who may use it: platform
// probes (any host), public (anyone on a commune's host), or resident (a
// logged-in resident of that commune).
func (s *Server) routes() {
	e := s.engine
	e.Use(gin.CustomRecovery(func(c *gin.Context, err any) {
		s.log.Error("panic", "error", err, "path", c.Request.URL.Path)
		c.AbortWithStatus(http.StatusInternalServerError)
	}))
	e.Use(requestID(), logRequests(s.log), securityHeaders(payfipOrigins(s.cfg.PayFiP.ClassicURL, s.cfg.PayFiP.WSPaymentURL), s.secure()))

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
	t := e.Group("/", s.resolveTenant, s.readForm(formBody), s.loadResident)

	// public
	t.GET("/theme.css", s.themeCSS)
	t.GET("/logo", s.logo)
	t.GET("/accessibilite", s.accessibility)
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

	e.NoRoute(s.resolveTenant, s.notFound)
}
