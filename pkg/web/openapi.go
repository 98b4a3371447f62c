package web

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// OpenAPI is the API v1 document; a test checks it against the routes.
//
//go:embed openapi.yaml
var OpenAPI []byte

func (s *Server) openapi(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml; charset=utf-8", OpenAPI)
}

// Routes lists the registered routes as "METHOD /path/:param", for tests.
func (s *Server) Routes() []string {
	var out []string
	for _, r := range s.engine.Routes() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}
