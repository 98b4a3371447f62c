package db

import (
	"fmt"
	"strings"
)

// Page sizes of the lists (staff screens, residents' lists).
const (
	DefaultPerPage = 20
	MaxPerPage     = 100
)

// PageWindow places page (1-based) of perPage rows (0: DefaultPerPage, at
// most MaxPerPage) among total rows: the LIMIT and OFFSET to read it, and
// ok false when the page is past the last one (nothing to read). Page
// numbers are compared, not offsets: (page-1)*perPage overflows for huge
// pages and PostgreSQL refuses a negative OFFSET.
func PageWindow(page, perPage, total int) (limit int, offset int64, ok bool) {
	if perPage <= 0 {
		perPage = DefaultPerPage
	}
	perPage = min(perPage, MaxPerPage)
	page = max(page, 1)
	pages := (int64(total) + int64(perPage) - 1) / int64(perPage)
	if int64(page-1) >= pages {
		return perPage, 0, false
	}
	return perPage, int64(page-1) * int64(perPage), true
}

// EscapeLike escapes LIKE's wildcards (and its escape character) so that s
// matches as written.
func EscapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// Contains is the LIKE pattern of text containing s (trimmed) anywhere;
// "" for an empty s, which static queries read as "no filter".
func Contains(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	return "%" + EscapeLike(s) + "%"
}

// Prefix is the LIKE pattern of text starting with s; "" for an empty s.
func Prefix(s string) string {
	if s == "" {
		return ""
	}
	return EscapeLike(s) + "%"
}

// Orders are the fixed ORDER BY clauses a list may be sorted by, by sort
// key ("-key": descending): the key comes from the request, the clause
// never does.
type Orders map[string]string

// Clause is the ORDER BY clause of key ("" is def); an unknown key is
// refused, never turned into SQL.
func (o Orders) Clause(key, def string) (string, error) {
	if key == "" {
		key = def
	}
	clause, ok := o[key]
	if !ok {
		return "", fmt.Errorf("unknown sort %q", key)
	}
	return clause, nil
}
