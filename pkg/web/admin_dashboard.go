package web

import (
	"net/http"

	"github.com/gin-gonic/gin"
)

// adminDashboard is the staff's home, "Tableau de bord" (its figures and
// charts come with the screens of the back office).
func (s *Server) adminDashboard(c *gin.Context) {
	s.render(c, http.StatusOK, "admin/dashboard.html", s.staffPage(c, "dashboard", "Tableau de bord", nil))
}
