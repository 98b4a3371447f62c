package web

// pager is the page navigation under a long table ("Page précédente ·
// Page 2 sur 5 · Page suivante"), the layout's "pager" template.
type pager struct {
	Page, Pages      int
	PrevURL, NextURL string
}

// newPager places page (1-based) among total rows shown perPage at a time;
// pageURL builds the link to another page.
func newPager(page, total, perPage int, pageURL func(int) string) pager {
	p := pager{Page: page, Pages: max(1, (total+perPage-1)/perPage)}
	if page > 1 {
		p.PrevURL = pageURL(min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.NextURL = pageURL(page + 1)
	}
	return p
}
