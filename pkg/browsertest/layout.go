package browsertest

import (
	"context"
	"strings"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Viewport is a window size in CSS pixels, as a resident's device lays
// pages out.
type Viewport struct {
	Name          string
	Width, Height int64
	// Scale is the device pixel ratio: a 1280 px wide screen at 200 % zoom
	// lays pages out in 640 CSS px at a ratio of 2.
	Scale float64
	// Mobile emulates a phone: the meta viewport applies and scrollbars
	// overlay the page.
	Mobile bool
}

// The widths the product promises: a 320 CSS px phone (WCAG 1.4.10,
// "Reflow"), a 1280 px screen at 200 % zoom, and the desktop.
var (
	Phone   = Viewport{Name: "320 px", Width: 320, Height: 640, Scale: 2, Mobile: true}
	Zoom200 = Viewport{Name: "1280 px at 200 %", Width: 640, Height: 512, Scale: 2}
	Desktop = Viewport{Name: "1280 px", Width: 1280, Height: 900, Scale: 1}
)

// MinTarget is the smallest tap target, in CSS pixels each way.
const MinTarget = 44

// SetViewport lays the page out at v from now on (the current page is laid
// out again at once). Pages are checked by axe-core again at each width.
func (p *Page) SetViewport(v Viewport) {
	p.t.Helper()
	p.do("set the viewport to "+v.Name, func(ctx context.Context) error {
		_, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width: v.Width, Height: v.Height, DeviceScaleFactor: v.Scale, Mobile: v.Mobile,
			ScreenWidth: v.Width, ScreenHeight: v.Height,
		})
		return err
	})
	p.viewport = v
}

// Layout is what a page looks like at the current width.
type Layout struct {
	ViewportWidth int `json:"viewportWidth"` // CSS px available to the page
	PageWidth     int `json:"pageWidth"`     // CSS px of its widest content
	// Overflowing describes the innermost elements reaching past the
	// viewport's right edge (what makes the page scroll sideways).
	Overflowing []string `json:"overflowing"`
	// SmallTargets describes the links, buttons and fields smaller than
	// MinTarget × MinTarget, links inside running text excepted (WCAG
	// 2.5.8's inline exception). A checkbox counts with its label, which
	// takes the tap as well.
	SmallTargets []string `json:"smallTargets"`
}

// Layout measures the current page.
func (p *Page) Layout() Layout {
	p.t.Helper()
	return evalJS[Layout](p, "measure the layout", callExtraJS("layout", MinTarget))
}

// MustReflow fails the test (and goes on) unless the current page fits its
// viewport without horizontal scrolling and every tap target is at least
// MinTarget × MinTarget.
func (p *Page) MustReflow() {
	p.t.Helper()
	l := p.Layout()
	where := p.URL()
	if p.viewport.Name != "" {
		where += " at " + p.viewport.Name
	}
	if l.PageWidth > l.ViewportWidth {
		p.t.Errorf("browsertest: %s is %d px wide in a %d px viewport: it scrolls sideways. Past the edge:\n  %s",
			where, l.PageWidth, l.ViewportWidth, strings.Join(l.Overflowing, "\n  "))
	}
	if len(l.SmallTargets) > 0 {
		p.t.Errorf("browsertest: %s has tap targets under %d × %d px:\n  %s", where, MinTarget, MinTarget,
			strings.Join(l.SmallTargets, "\n  "))
	}
}

// layoutJS measures the page for Layout (one of the extra page helpers).
const layoutJS = `layout(min) {
		const de = document.documentElement;
		const vw = de.clientWidth;
		const out = {viewportWidth: vw, pageWidth: Math.max(de.scrollWidth, document.body ? document.body.scrollWidth : 0), overflowing: [], smallTargets: []};
		const short = el => el.outerHTML.replace(/\s+/g, " ").slice(0, 140);
		if (out.pageWidth > vw) {
			// An element past the edge, or one whose text overflows it.
			const right = el => {
				const r = el.getBoundingClientRect();
				if (r.width === 0 && r.height === 0) return 0;
				return Math.max(r.right, getComputedStyle(el).overflowX === "visible" ? r.left + el.scrollWidth : 0);
			};
			const past = [...document.querySelectorAll("body *")].filter(el => right(el) > vw + 0.5);
			out.overflowing = past.filter(el => !past.some(o => o !== el && el.contains(o))).slice(0, 8)
				.map(el => Math.round(right(el)) + " px: " + short(el));
		}
		// A link inside running text: the line height of the text bounds it.
		const block = el => {
			let b = el.parentElement;
			while (b && getComputedStyle(b).display.startsWith("inline")) b = b.parentElement;
			return b;
		};
		const inText = el => {
			if (el.tagName !== "A" || !getComputedStyle(el).display.startsWith("inline") || getComputedStyle(el).display === "inline-block") return false;
			const b = block(el);
			if (!b) return false;
			let text = b.innerText;
			for (const a of b.querySelectorAll("a, button")) text = text.replace(a.innerText, " ");
			return /\p{L}{2,}/u.test(text);
		};
		const sel = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex='-1'])";
		for (const el of document.querySelectorAll(sel)) {
			if (!el.checkVisibility({visibilityProperty: true})) continue;
			let r = el.getBoundingClientRect();
			if (r.width === 0 && r.height === 0) continue;
			let left = r.left, top = r.top, right = r.right, bottom = r.bottom;
			if (el.tagName === "INPUT" && ["checkbox", "radio"].includes(el.type)) {
				for (const l of el.labels || []) {
					const lr = l.getBoundingClientRect();
					left = Math.min(left, lr.left); top = Math.min(top, lr.top);
					right = Math.max(right, lr.right); bottom = Math.max(bottom, lr.bottom);
				}
			}
			const w = right - left, h = bottom - top;
			if ((w >= min - 0.5 && h >= min - 0.5) || inText(el)) continue;
			out.smallTargets.push(Math.round(w) + " × " + Math.round(h) + ": " + short(el));
		}
		return out;
	},`
