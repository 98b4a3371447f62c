package web

import (
	"github.com/gin-gonic/gin"

	"portail/pkg/audit"
)

// setActor makes a the actor of the rest of the request: every audit entry
// written on its behalf names a and the client IP.
func setActor(c *gin.Context, kind string, id int64) {
	a := audit.Actor{Kind: kind, ID: id, IP: c.ClientIP()}
	c.Request = c.Request.WithContext(audit.WithActor(c.Request.Context(), a))
}

// anonymousActor is the actor of every request until a session or a key
// says who is calling (loadResident, loadStaff, apiAuth).
func anonymousActor(c *gin.Context) {
	setActor(c, audit.KindAnonymous, 0)
	c.Next()
}
