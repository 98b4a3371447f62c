package web

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"portail/pkg/web/view"
)

// accessibility is the commune's accessibility statement (RGAA).
func (s *Server) accessibility(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/accessibilite.html", view.Page{Title: "Accessibilité"})
}

// notFound answers unknown paths of a commune's portal.
func (s *Server) notFound(c *gin.Context) {
	if strings.HasPrefix(c.Request.URL.Path, "/api/") {
		s.apiNotFound(c)
		return
	}
	s.render(c, http.StatusNotFound, "errors/error.html", view.Page{
		Title: "Page introuvable",
		Data: map[string]string{
			"Title":   "Page introuvable",
			"Message": "La page demandée n'existe pas ou n'est plus disponible.",
		},
	})
}
