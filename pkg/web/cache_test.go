package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
)

// Whatever a route's middleware did, an answer that sets a cookie is never
// marked for shared caches.
func TestCachePublicNeverWithACookie(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	w := httptest.NewRecorder()
	c, _ := gin.CreateTestContext(w)
	cachePublic(c, 5*time.Minute)
	if got := w.Header().Get("Cache-Control"); got != "public, max-age=300" {
		t.Fatalf("without a cookie: Cache-Control %q", got)
	}
	w = httptest.NewRecorder()
	c, _ = gin.CreateTestContext(w)
	http.SetCookie(c.Writer, &http.Cookie{Name: "portail_session", Value: "x"})
	cachePublic(c, 5*time.Minute)
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Fatalf("with a cookie: Cache-Control %q", got)
	}
}
