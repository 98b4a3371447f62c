package web

import (
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// The pattern of the staff's lists (paginated, sortable, filterable,
// usable without JavaScript):
//
//	l := readList(c, audit.Sorts(), audit.DefaultSort)   // ?page=, ?tri=, filters
//	q := store.Query{Text: l.Filter("q"), Sort: l.Sort, Page: l.Page, PerPage: perPage}
//	rows, total, err := store.Search(ctx, t.ID, q)
//	if last := lastPage(total, perPage); l.Page > last {     // an old link past the end
//		q.Page, l.Page = last, last
//		rows, total, err = store.Search(ctx, t.ID, q)
//	}
//	d := listData{Rows: rows, Pager: l.Pager(total, perPage),
//		Columns: []sortColumn{l.Column("Date", "at"), …}}
//
// and in the template (layouts/lists.html): a GET form of the filters, the
// headers {{template "sort_header" .}} of each column (a link that sorts
// by it, aria-sort telling the current order) and {{template
// "list_pager" .Pager}}. Every link keeps the filters.

// listParams are what a list page reads from its URL.
type listParams struct {
	path  string
	query url.Values
	// Page is the page asked (1-based, at most maxPageParam).
	Page int
	// Sort is a key of the list's store ("-key": descending), the default
	// when the URL names none or an unknown one.
	Sort string
}

// sortParam is the URL parameter of a list's order.
const sortParam = "tri"

// readList reads the page and the order of c's list; sorts are the keys
// the store accepts (without "-"), defaultSort its default.
func readList(c *gin.Context, sorts []string, defaultSort string) listParams {
	l := listParams{path: c.Request.URL.Path, query: c.Request.URL.Query(), Page: pageParam(c), Sort: defaultSort}
	if s := c.Query(sortParam); slices.Contains(sorts, strings.TrimPrefix(s, "-")) {
		l.Sort = s
	}
	return l
}

// Filter is a filter of the list as given in the URL, trimmed.
func (l listParams) Filter(name string) string { return strings.TrimSpace(l.query.Get(name)) }

// URL is the list's link with changes (name, value pairs; an empty value
// drops the parameter), keeping every other filter.
func (l listParams) URL(changes ...string) string {
	q := url.Values{}
	for k, v := range l.query {
		q[k] = slices.Clone(v)
	}
	for i := 0; i+1 < len(changes); i += 2 {
		if changes[i+1] == "" {
			q.Del(changes[i])
		} else {
			q.Set(changes[i], changes[i+1])
		}
	}
	if len(q) == 0 {
		return l.path
	}
	return l.path + "?" + q.Encode()
}

// Pager places the list's page among total rows shown perPage at a time.
func (l listParams) Pager(total, perPage int) pager {
	return newPager(min(l.Page, lastPage(total, perPage)), total, perPage, func(n int) string {
		return l.URL("page", strconv.Itoa(n))
	})
}

// sortColumn is a sortable column's header.
type sortColumn struct {
	Label    string
	URL      string // sorts by the column (reversing its order when it is the current one), back to page 1
	AriaSort string // ascending, descending or none
	Num      bool   // a column of numbers (aligned right)
}

// Column is the header of the column sorted by key.
func (l listParams) Column(label, key string) sortColumn {
	col := sortColumn{Label: label, AriaSort: "none"}
	next := key
	switch l.Sort {
	case key:
		col.AriaSort, next = "ascending", "-"+key
	case "-" + key:
		col.AriaSort = "descending"
	}
	col.URL = l.URL(sortParam, next, "page", "")
	return col
}

// NumColumn is Column for a column of numbers.
func (l listParams) NumColumn(label, key string) sortColumn {
	col := l.Column(label, key)
	col.Num = true
	return col
}
