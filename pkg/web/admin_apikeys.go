package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"portail/pkg/apikey"
	"portail/pkg/tenant"
	"portail/pkg/web/view"
)

type apiKeysData struct {
	Keys    []apikey.Key
	MaxName int
	Name    string // the creation form's name, kept when refused
	// Created is the key just created, in clear: shown on this answer
	// only, never again (only its hash is kept).
	Created     string
	CreatedName string
}

// adminAPIKeys is "Clés d'API": the keys of the commune's billing
// software, their use and status.
func (s *Server) adminAPIKeys(c *gin.Context) {
	s.renderAPIKeys(c, http.StatusOK, apiKeysData{}, nil)
}

func (s *Server) renderAPIKeys(c *gin.Context, status int, d apiKeysData, flash *view.Flash) {
	t := tenant.FromContext(c.Request.Context())
	keys, err := s.APIKeys.List(c.Request.Context(), t.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	// Active keys first, the most recent first.
	active, revoked := []apikey.Key{}, []apikey.Key{}
	for i := len(keys) - 1; i >= 0; i-- {
		if keys[i].RevokedAt == nil {
			active = append(active, keys[i])
		} else {
			revoked = append(revoked, keys[i])
		}
	}
	d.Keys, d.MaxName = append(active, revoked...), apikey.MaxNameLength
	p := s.staffPage(c, "cles-api", "Clés d'API", d)
	if flash != nil {
		p.Flashes = append(p.Flashes, *flash)
	}
	s.render(c, status, "admin/apikeys.html", p)
}

// adminAPIKeyCreate creates a key and shows it once, on this answer (not
// stored in clear anywhere, so it cannot be shown again).
func (s *Server) adminAPIKeyCreate(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	name := c.PostForm("name")
	raw, k, err := s.APIKeys.Issue(c.Request.Context(), t.ID, staffOf(c).ID, name)
	if errors.Is(err, apikey.ErrInvalidName) {
		s.renderAPIKeys(c, http.StatusUnprocessableEntity, apiKeysData{Name: name}, &view.Flash{Kind: "error",
			Text: "Donnez un nom à la clé (1 à " + strconv.Itoa(apikey.MaxNameLength) + " caractères), par exemple celui du logiciel de facturation.", Fields: []string{"name"}})
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderAPIKeys(c, http.StatusOK, apiKeysData{Created: raw, CreatedName: k.Name},
		&view.Flash{Kind: "ok", Text: "La clé « " + k.Name + " » est créée. Copiez-la maintenant : elle ne sera plus jamais affichée."})
}

// adminAPIKeyRevoke revokes a key: the next API request with it is
// refused.
func (s *Server) adminAPIKeyRevoke(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		s.notFound(c)
		return
	}
	if err := s.APIKeys.RevokeID(c.Request.Context(), t.ID, id); errors.Is(err, apikey.ErrNotFound) {
		s.notFound(c)
		return
	} else if err != nil {
		s.fail(c, err)
		return
	}
	s.staffFlash(c, "La clé est révoquée : le logiciel qui l'utilisait ne peut plus appeler l'API.")
	c.Redirect(http.StatusSeeOther, "/admin/cles-api")
}
