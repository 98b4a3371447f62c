package web

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"portail/pkg/paris"
	"portail/pkg/tenant"
)

// dataDownload is "Télécharger mes données" (Mes informations): one JSON
// file of everything the portal holds about the logged-in resident,
// streamed as it is read (account.Service.Export).
//
// Any resident session may download, including one reopened by the
// remember-me cookie: that session already shows every invoice, payment
// and message the file holds, and the file adds only the resident's own
// login history. Closing the account, which cannot be undone, asks for the
// password.
func (s *Server) dataDownload(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	r := residentOf(c)
	name := "mes-donnees-" + t.Slug + "-" + time.Now().In(paris.Location).Format(time.DateOnly) + ".json"
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="`+name+`"`)
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusOK)
	if err := s.Accounts.Export(c.Request.Context(), t, r.Account.ID, c.Writer); err != nil {
		if !c.Writer.Written() {
			c.Header("Content-Disposition", "")
			c.Header("Content-Type", "")
			s.fail(c, err)
			return
		}
		// Part of the file is sent: cut the connection rather than end
		// the response normally, so the browser reports a failed download.
		s.log.Error("data download interrupted", "tenant", t.Slug, "error", err)
		c.Abort()
		if conn, _, herr := c.Writer.Hijack(); herr == nil {
			conn.Close()
		}
	}
}
