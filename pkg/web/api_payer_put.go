package web

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"portail/pkg/imports"
	"portail/pkg/tenant"
)

type apiPayer struct {
	DisplayName string `json:"display_name"`
	Email       string `json:"email"`
}

// apiPutPayer creates or updates one payer by its reference: 201 when the
// account was created, 200 otherwise.
func (s *Server) apiPutPayer(c *gin.Context) {
	t := tenant.FromContext(c.Request.Context())
	var p apiPayer
	if !decodeJSON(c, &p, "a JSON object {display_name, email}") {
		return
	}
	rep, err := s.Imports.ApplyPayer(c.Request.Context(), t.ID, apiActor(c),
		imports.PayerLine{Ref: c.Param("reference"), Name: p.DisplayName, Email: p.Email})
	if err != nil {
		apiWriteFailed(c, err)
		return
	}
	if rep.Rejected > 0 {
		apiRejected(c, "invalid_payer", rep)
		return
	}
	status := http.StatusOK
	if rep.Inserted > 0 {
		status = http.StatusCreated
	}
	c.JSON(status, gin.H{"reference": c.Param("reference"), "batch_id": rep.BatchID,
		"inserted": rep.Inserted, "updated": rep.Updated, "unchanged": rep.Unchanged, "notes": rep.Notes})
}
