package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// Keys that Press knows.
const (
	Tab      = "Tab"
	ShiftTab = "Shift+Tab"
	Enter    = "Enter"
	Space    = "Space"
	Escape   = "Escape"
)

// maxTabs bounds TabTo: no resident page has that many stops.
const maxTabs = 80

// Focus describes the focused element as a keyboard or screen reader user
// meets it.
type Focus struct {
	Kind string `json:"kind"` // link, button, textbox, checkbox, … or "none" (nothing focused)
	Name string `json:"name"` // its label, aria-label or text
	Text string `json:"text"` // its visible text (a message's words)
	// DescribedBy is the text of the elements its aria-describedby names.
	DescribedBy string `json:"describedBy"`
	Invalid     bool   `json:"invalid"` // aria-invalid="true"
	Visible     bool   `json:"visible"` // rendered and inside the viewport
	Indicator   bool   `json:"indicator"`
	// InOrder: it follows the element focused before in document order.
	InOrder  bool `json:"inOrder"`
	Editable bool `json:"editable"` // a field that takes typed text
}

func (f Focus) String() string {
	if f.Kind == "none" {
		return "(nothing)"
	}
	return f.Kind + " " + strconv.Quote(f.Name)
}

// Focused describes the element that has the focus now.
func (p *Page) Focused() Focus {
	p.t.Helper()
	return evalJS[Focus](p, "read the focus", callExtraJS("focused", ""))
}

// MustHaveFocusOn fails the test unless the focused element's text holds
// every one of texts: a message that the page moved the focus to, so that a
// screen reader reads it first.
func (p *Page) MustHaveFocusOn(texts ...string) Focus {
	p.t.Helper()
	f := p.Focused()
	for _, s := range texts {
		if !strings.Contains(collapse(f.Text+" "+f.Name), collapse(s)) {
			p.t.Fatalf("browsertest: on %s the focus is on %s (text %q), not on %q", p.URL(), f, truncate(f.Text, 200), s)
		}
	}
	return f
}

// Press presses a key (Tab, ShiftTab, Enter, Space, Escape) on the focused
// element. If that starts a navigation it waits for the new page, then
// checks the accessibility of the page.
func (p *Page) Press(key string) {
	p.t.Helper()
	evalJS[bool](p, "arm the navigation probe", callJS("arm"))
	before := p.nav.count()
	p.pressKey(key)
	p.waitNavigation(key, before)
	p.checkAccessibility()
}

func (p *Page) pressKey(key string) {
	p.t.Helper()
	var keys string
	var opts []chromedp.KeyOption
	switch key {
	case Tab:
		keys = kb.Tab
	case ShiftTab:
		keys = kb.Tab
		opts = append(opts, chromedp.KeyModifiers(chromedp.ModifierShift))
	case Enter:
		keys = kb.Enter
	case Space:
		keys = " "
	case Escape:
		keys = kb.Escape
	default:
		p.t.Fatalf("browsertest: Press(%q): unknown key", key)
	}
	p.do("press "+key, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.KeyEvent(keys, opts...))
	})
}

// Type types text key by key into the focused field.
func (p *Page) Type(text string) {
	p.t.Helper()
	if f := p.Focused(); !f.Editable {
		p.t.Fatalf("browsertest: Type(%q): the focus is on %s, not on a text field", text, f)
	}
	if strings.ContainsAny(text, "\r\n\t") {
		p.t.Fatalf("browsertest: Type(%q): press Enter and Tab with Press", text)
	}
	p.do("type "+strconv.Quote(text), func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.KeyEvent(text))
	})
}

// TabTo presses Tab until the element named name has the focus, and
// returns it. Every stop on the way must be on screen, show a focus
// indicator and come after the previous one in document order; the test
// fails otherwise, or when the focus leaves the page first.
func (p *Page) TabTo(name string) Focus {
	p.t.Helper()
	return p.tabTo(name, Tab)
}

// ShiftTabTo is TabTo going up the page with Shift+Tab (from a message
// that received the focus back to the menu, say).
func (p *Page) ShiftTabTo(name string) Focus {
	p.t.Helper()
	return p.tabTo(name, ShiftTab)
}

func (p *Page) tabTo(name, key string) Focus {
	p.t.Helper()
	what := fmt.Sprintf("%s to %q", key, name)
	want := collapse(name)
	evalJS[bool](p, "start tabbing", callExtraJS("tabStart"))
	var seen []string
	for range maxTabs {
		p.pressKey(key)
		f := evalJS[Focus](p, "read the focus", callExtraJS("focused", key))
		seen = append(seen, f.String())
		order := "focus order on " + p.URL() + ":\n  " + strings.Join(seen, "\n  ")
		switch {
		case f.Kind == "none":
			p.t.Fatalf("browsertest: %s: the focus left the page first; %s", what, order)
		case !f.Visible:
			p.t.Fatalf("browsertest: %s: %s has the focus but is hidden or off screen; %s", what, f, order)
		case !f.Indicator:
			p.t.Fatalf("browsertest: %s: %s has the focus without a visible indicator; %s", what, f, order)
		case !f.InOrder:
			p.t.Fatalf("browsertest: %s: the focus jumped against the document order to %s; %s", what, f, order)
		}
		if collapse(f.Name) == want {
			return f
		}
	}
	p.t.Fatalf("browsertest: %s: not reached after %d presses; focus order:\n  %s", what, maxTabs, strings.Join(seen, "\n  "))
	return Focus{}
}

// callExtraJS calls one of extraHelpers, the page helpers of this file and
// layout.go, with JSON arguments.
func callExtraJS(fn string, args ...any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			panic(err) // only plain values are passed
		}
		parts[i] = string(b)
	}
	return fmt.Sprintf("(window.__portailBTExtra || (window.__portailBTExtra = %s)).%s(%s)", extraHelpers, fn, strings.Join(parts, ", "))
}

// extraHelpers measures layouts and reads the focus.
const extraHelpers = `({
	` + layoutJS + `
	tabStart() {
		window.__portailBTPrev = document.activeElement;
		return true;
	},
	// step: the key that moved the focus ("Tab", "Shift+Tab"), to check
	// the order against the element focused before; "" reads the focus only.
	focused(step) {
		const norm = s => (s || "").replace(/\s+/g, " ").trim();
		const el = document.activeElement;
		if (!el || el === document.body || el === document.documentElement) return {kind: "none"};
		const byIds = ids => (ids || "").split(/\s+/).filter(Boolean)
			.map(id => document.getElementById(id)).filter(Boolean).map(e => norm(e.textContent)).join(" ");
		const tag = el.tagName.toLowerCase();
		let kind = el.getAttribute("role") || tag;
		if (tag === "a") kind = "link";
		if (tag === "input") kind = ["checkbox", "radio", "submit", "button"].includes(el.type) ? el.type : "textbox";
		if (tag === "textarea") kind = "textbox";
		let name = el.getAttribute("aria-label") || byIds(el.getAttribute("aria-labelledby"));
		if (!name && el.labels && el.labels.length) name = [...el.labels].map(l => norm(l.innerText)).join(" ");
		if (!name && ["a", "button"].includes(tag)) name = norm(el.innerText);
		if (!name && tag === "input") name = el.value;
		const r = el.getBoundingClientRect();
		const onScreen = r.width > 0 && r.height > 0 && r.bottom > 0 && r.right > 0 && r.top < innerHeight && r.left < innerWidth;
		const cs = getComputedStyle(el);
		const indicator = (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== "none";
		let inOrder = true;
		if (step) {
			const prev = window.__portailBTPrev;
			if (prev && prev !== document.body && prev.isConnected && prev !== el) {
				const pos = prev.compareDocumentPosition(el);
				inOrder = step === "Tab"
					? !!(pos & (Node.DOCUMENT_POSITION_FOLLOWING | Node.DOCUMENT_POSITION_CONTAINED_BY))
					: !!(pos & (Node.DOCUMENT_POSITION_PRECEDING | Node.DOCUMENT_POSITION_CONTAINS));
			}
			window.__portailBTPrev = el;
		}
		return {
			kind, name: norm(name), text: norm(el.innerText).slice(0, 500),
			describedBy: byIds(el.getAttribute("aria-describedby")),
			invalid: el.getAttribute("aria-invalid") === "true",
			visible: onScreen && el.checkVisibility({visibilityProperty: true}),
			indicator, inOrder,
			editable: (tag === "textarea" || (tag === "input" && !["checkbox", "radio", "submit", "button", "reset", "image", "file"].includes(el.type))) && !el.readOnly && !el.disabled,
		};
	},
})`
