package web

import (
	"strconv"

	"github.com/gin-gonic/gin"
)

// pager is the page navigation under a long table ("Page précédente ·
// Page 2 sur 5 · Page suivante"), the layout's "pager" template.
type pager struct {
	Page, Pages      int
	PrevURL, NextURL string
}

// newPager places page (1-based) among total rows shown perPage at a time;
// pageURL builds the link to another page.
func newPager(page, total, perPage int, pageURL func(int) string) pager {
	p := pager{Page: page, Pages: lastPage(total, perPage)}
	if page > 1 {
		p.PrevURL = pageURL(min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.NextURL = pageURL(page + 1)
	}
	return p
}

// maxPageParam bounds the page numbers read from URLs, far below where
// (page-1)*perPage would overflow into a negative OFFSET.
const maxPageParam = 1 << 30

// pageParam reads the "page" query parameter: 1 when missing, malformed or
// below 1, at most maxPageParam. A page past the last one is the caller's to
// clamp once it knows the count (lastPage).
func pageParam(c *gin.Context) int {
	page, _ := strconv.Atoi(c.Query("page")) // out of range: ±MaxInt
	return min(max(page, 1), maxPageParam)
}

// lastPage is the number of the last page of total rows (1 when empty).
func lastPage(total, perPage int) int {
	return max(1, (total+perPage-1)/perPage)
}
