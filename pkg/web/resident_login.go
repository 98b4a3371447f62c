package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/web/view"
)

// loginPage shows "LE PORTAIL DES FACTURES / Veuillez vous connecter".
func (s *Server) loginPage(c *gin.Context) {
	s.render(c, http.StatusOK, "resident/login.html", view.Page{
		Title: "Connexion",
		Data:  map[string]string{"Email": ""},
	})
}
