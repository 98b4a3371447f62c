package web

import (
	"strings"
	"unicode/utf8"
)

// storableText tells whether s can be stored as text: PostgreSQL refuses
// NUL bytes, and bytes that are not UTF-8 would be stored (or shown) as
// garbage. Every form field, path segment and API string goes through it.
func storableText(s string) bool {
	return strings.IndexByte(s, 0) < 0 && utf8.ValidString(s)
}

// storableValues tells whether every name and value of a form is storable.
func storableValues(values map[string][]string) bool {
	for name, vs := range values {
		if !storableText(name) {
			return false
		}
		for _, v := range vs {
			if !storableText(v) {
				return false
			}
		}
	}
	return true
}
