package browsertest

import (
	"context"
	"fmt"
	"strconv"

	"github.com/chromedp/chromedp"
)

// SetFiles chooses files for the file input whose <label> reads label, as
// a user picking them in the file dialog (the paths must exist).
func (p *Page) SetFiles(label string, paths ...string) {
	p.t.Helper()
	what := fmt.Sprintf("SetFiles(%q)", label)
	id := evalJS[string](p, what, `(() => {
		const want = `+strconv.Quote(label)+`;
		for (const l of document.querySelectorAll("label")) {
			if (l.textContent.replace(/\s+/g, " ").trim() === want) {
				const input = l.control;
				if (input && input.type === "file" && input.id) return input.id;
			}
		}
		return "";
	})()`)
	if id == "" {
		p.t.Fatalf("browsertest: %s: no file input with this label", what)
	}
	p.do(what, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#"+id), paths))
	})
}
