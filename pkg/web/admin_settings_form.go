package web

import (
	"errors"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

// The staff's Paramètres and Textes screens change the commune through
// tenant.Service: these helpers turn its refusals into French messages tied
// to the form's fields.

// settingsMessages says in French what is wrong with each field a commune
// may change itself, and which form field it is about.
var settingsMessages = map[string]struct{ id, text string }{
	"contact.email":         {"contact_email", "L'adresse mail du service est obligatoire et doit être valide : elle reçoit les messages des redevables."},
	"contact.phone":         {"contact_phone", "Le numéro de téléphone ne doit pas dépasser 40 caractères."},
	"contact.hours":         {"contact_hours", "Les horaires ne doivent pas dépasser 200 caractères."},
	"reminders.days_before": {"reminders_days_before", "Le rappel doit partir entre 1 et 60 jours avant l'échéance."},
	"texts.welcome":         {"welcome", "Le texte d'accueil ne doit pas dépasser 2000 caractères."},
	"texts.notice":          {"notice", "L'information importante ne doit pas dépasser 4000 caractères."},
	"texts.notice_from":     {"notice_from", "La date de début d'affichage n'est pas une date valide (jj/mm/aaaa)."},
	"texts.notice_until":    {"notice_until", "La date de fin d'affichage n'est pas valide, ou précède la date de début."},
}

// settingsRefusal turns an error of tenant.Service into flashes for the
// form, or reports false when err is not a refusal.
func settingsRefusal(err error) ([]view.Flash, bool) {
	var stale *tenant.StaleError
	if errors.As(err, &stale) {
		return []view.Flash{{Kind: "error", Text: "Ces réglages ont été " + strings.TrimPrefix(stale.Error(), "les réglages de la commune ont été ")}}, true
	}
	fes := tenant.FieldErrors(err)
	if len(fes) == 0 {
		return nil, false
	}
	var out []view.Flash
	for _, fe := range fes {
		if m, ok := settingsMessages[fe.Field]; ok {
			out = append(out, view.Flash{Kind: "error", Text: m.text, Fields: []string{m.id}})
			continue
		}
		out = append(out, view.Flash{Kind: "error", Text: "Réglage refusé : " + fe.Error()})
	}
	return out, true
}

// formVersion is the version of the commune the form was based on.
func formVersion(c *gin.Context) int64 {
	v, _ := strconv.ParseInt(c.PostForm("version"), 10, 64)
	return v
}

// checked reads a checkbox.
func checked(c *gin.Context, name string) bool { return c.PostForm(name) != "" }
