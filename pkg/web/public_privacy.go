package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// privacyData is what the "Données personnelles" page says of the
// retention periods, in words.
type privacyData struct {
	InactiveAfter, InactiveNotice string
	Messages                      string
	Audit, AuditPayments          string
	SessionIdle, RememberMe       string
}

// privacyPage is the commune's "Données personnelles" page (the
// information owed to residents): the commune as controller, purposes,
// legal basis, recipients, retention periods from the settings, rights and
// contact. Public, linked from every page's footer.
func (s *Server) privacyPage(c *gin.Context) {
	p := s.cfg.Privacy
	d := privacyData{
		InactiveAfter:  frPeriod(p.InactiveAfter),
		InactiveNotice: frPeriod(p.InactiveNotice),
		Messages:       frPeriod(p.Messages),
		Audit:          frPeriod(p.Audit),
		AuditPayments:  frPeriod(p.AuditPayments),
		SessionIdle:    frPeriod(s.cfg.Security.SessionIdle),
		RememberMe:     frPeriod(s.cfg.Security.RememberMe),
	}
	s.render(c, http.StatusOK, "resident/donnees_personnelles.html", s.page(c, "", "Données personnelles", d))
}

// frPeriod says a retention period in French words: years (365 days),
// months (of 30 days, from two), days, hours or minutes, whichever divides
// it.
func frPeriod(d time.Duration) string {
	const day = 24 * time.Hour
	plural := func(n int64, one, many string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", n, many)
	}
	switch {
	case d <= 0:
		return "aucune durée"
	case d%(365*day) == 0:
		return plural(int64(d/(365*day)), "an", "ans")
	case d%(30*day) == 0 && d >= 60*day: // "30 jours" reads better than "1 mois"
		return fmt.Sprintf("%d mois", d/(30*day))
	case d%day == 0:
		return plural(int64(d/day), "jour", "jours")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "heure", "heures")
	default:
		return plural(int64((d+time.Minute-1)/time.Minute), "minute", "minutes")
	}
}

// accountClosedPage is where a resident lands once their account is
// closed. Public: the session is gone by then.
func (s *Server) accountClosedPage(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	s.render(c, http.StatusOK, "resident/compte_ferme.html", s.page(c, "", "Compte fermé", nil))
}
