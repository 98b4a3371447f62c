package web

import (
	"errors"
	"mime"
	"net/http"
	"net/url"

	"github.com/gin-gonic/gin"

	"portail/pkg/web/view"
)

// readForm is the form middleware of the communes' pages. It bounds the
// request body to limit bytes, parses forms (URL-encoded and multipart) up
// front so that an oversized body is refused with 413 instead of reaching
// a handler as empty fields, and refuses with 422 any form field, query
// parameter or path segment holding a NUL byte or bytes that are not UTF-8:
// handlers only ever see text they can store.
func (s *Server) readForm(limit int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		r := c.Request
		r.Body = http.MaxBytesReader(c.Writer, r.Body, limit)
		if err := parseBodyForm(r, limit); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.refuseForm(c, http.StatusRequestEntityTooLarge, "Les données envoyées sont trop volumineuses.")
				return
			}
			s.refuseForm(c, http.StatusBadRequest, "Le formulaire envoyé est illisible.")
			return
		}
		if !storableRequest(c) {
			s.refuseForm(c, http.StatusUnprocessableEntity,
				"Le formulaire contient des caractères non valides (caractère nul ou texte mal encodé). Veuillez corriger votre saisie et réessayer.")
			return
		}
		c.Next()
	}
}

// parseBodyForm parses the body of a form submission; other bodies are
// left to their handlers.
func parseBodyForm(r *http.Request, limit int64) error {
	if r.Method != http.MethodPost && r.Method != http.MethodPut && r.Method != http.MethodPatch {
		return nil
	}
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mediaType {
	case "application/x-www-form-urlencoded":
		return r.ParseForm()
	case "multipart/form-data":
		return r.ParseMultipartForm(limit)
	}
	return nil
}

// storableRequest tells whether every string a handler may read from the
// request is storable text: path parameters, query parameters and, when
// parsed, form fields (names, values and file names).
func storableRequest(c *gin.Context) bool {
	for _, p := range c.Params {
		if !storableText(p.Value) {
			return false
		}
	}
	// Query parameters that do not parse are ignored by handlers, as before.
	query, _ := url.ParseQuery(c.Request.URL.RawQuery)
	if !storableValues(query) || !storableValues(c.Request.PostForm) {
		return false
	}
	if mf := c.Request.MultipartForm; mf != nil {
		if !storableValues(mf.Value) {
			return false
		}
		for name, files := range mf.File {
			if !storableText(name) {
				return false
			}
			for _, f := range files {
				if !storableText(f.Filename) {
					return false
				}
			}
		}
	}
	return true
}

// fieldList is the fields an error is about: field alone, or none.
func fieldList(field string) []string {
	if field == "" {
		return nil
	}
	return []string{field}
}

func (s *Server) refuseForm(c *gin.Context, status int, msg string) {
	s.render(c, status, "errors/error.html", view.Page{Title: "Erreur",
		Data: map[string]string{"Title": "Formulaire refusé", "Message": msg}})
	c.Abort()
}
