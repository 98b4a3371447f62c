package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"portail/pkg/db"
)

// What every API handler shares to read a request and to answer a failure.

// apiFail answers a failure on the portal's side and logs err: 503 with
// Retry-After when the database is out of reach (see db.Unavailable),
// else 500 with msg.
func (s *Server) apiFail(c *gin.Context, err error, msg string) {
	c.Error(err)
	if db.Unavailable(err) {
		s.unavailable(c, "")
		return
	}
	apiError(c, http.StatusInternalServerError, "internal", msg, nil)
}

// bearerKey reads "Authorization: Bearer <key>"; the scheme is
// case-insensitive and may be followed by several spaces (RFC 9110 §11.4).
func bearerKey(header string) (string, bool) {
	scheme, key, _ := strings.Cut(strings.TrimSpace(header), " ")
	key = strings.TrimSpace(key)
	return key, strings.EqualFold(scheme, "Bearer") && key != ""
}

// apiText refuses, with 422, path parameters and query parameters that are
// not storable text (a NUL byte, or bytes that are not UTF-8).
func apiText(c *gin.Context) {
	for _, p := range c.Params {
		if !storableText(p.Value) {
			apiError(c, http.StatusUnprocessableEntity, "invalid_text",
				"path parameter "+p.Key+" must be UTF-8 text without NUL characters", gin.H{"parameter": p.Key})
			return
		}
	}
	query, _ := url.ParseQuery(c.Request.URL.RawQuery)
	if !storableValues(query) {
		apiError(c, http.StatusUnprocessableEntity, "invalid_text", "query parameters must be UTF-8 text without NUL characters", nil)
		return
	}
	c.Next()
}

// decodeJSON reads the request's JSON body into v, or answers the request
// itself and returns false: 413 when the body is over the route's limit,
// 422 when it is not UTF-8 or holds a NUL character (raw or escaped as
// \u0000) or an unpaired surrogate escape (which encoding/json would
// silently turn into U+FFFD), 400 when it is not the JSON expected. what
// names the expected body in the 400 message.
func decodeJSON(c *gin.Context, v any, what string) bool {
	raw, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			apiError(c, http.StatusRequestEntityTooLarge, "too_large",
				fmt.Sprintf("the body must be at most %d bytes", tooBig.Limit), gin.H{"limit_bytes": tooBig.Limit})
			return false
		}
		apiError(c, http.StatusBadRequest, "unreadable_body", "the body could not be read", nil)
		return false
	}
	if offset, ok := unstorableJSONText(raw); ok {
		apiError(c, http.StatusUnprocessableEntity, "invalid_text",
			"strings must be UTF-8 text without NUL characters or unpaired surrogates", gin.H{"offset": offset})
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil || dec.More() {
		apiError(c, http.StatusBadRequest, "invalid_json", "body must be "+what, nil)
		return false
	}
	return true
}

// unstorableJSONText finds the byte offset of the first text a JSON body
// must not carry: bytes that are not UTF-8, a NUL byte, or an escape that
// decodes to NUL or to half a surrogate pair. Backslashes only occur inside
// strings in valid JSON, so no string tracking is needed; invalid JSON is
// left to the decoder.
func unstorableJSONText(raw []byte) (int, bool) {
	if !utf8.Valid(raw) {
		for i := 0; i < len(raw); {
			r, size := utf8.DecodeRune(raw[i:])
			if r == utf8.RuneError && size == 1 {
				return i, true
			}
			i += size
		}
	}
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return i, true
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		start := i
		i++ // the escaped character: skipping it also skips the second half of "\\"
		if i >= len(raw) || raw[i] != 'u' {
			continue
		}
		r, ok := hex4(raw, i+1)
		if !ok {
			continue // the decoder will refuse it
		}
		i += 4
		switch {
		case r == 0:
			return start, true
		case r >= 0xDC00 && r <= 0xDFFF: // a low surrogate with no high one before it
			return start, true
		case r >= 0xD800 && r <= 0xDBFF: // a high surrogate must be followed by a low one
			if i+2 >= len(raw) || raw[i+1] != '\\' || raw[i+2] != 'u' {
				return start, true
			}
			low, ok := hex4(raw, i+3)
			if !ok || low < 0xDC00 || low > 0xDFFF {
				return start, true
			}
			i += 6
		}
	}
	return 0, false
}

// hex4 reads the four hex digits of a \u escape at raw[at:].
func hex4(raw []byte, at int) (rune, bool) {
	if at+4 > len(raw) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(raw[at:at+4]), 16, 16)
	return rune(n), err == nil
}
