// Package browsertest drives a headless Chromium for the web tests of the
// portal. A test finds elements by the labels that a user sees, never by CSS
// selectors, and every page that it reaches is checked with axe-core: serious
// and critical accessibility violations fail the test.
//
//	p := browsertest.New(t)
//	p.Visit(srv.URL + "/connexion")
//	p.Fill("Adresse mail", "alice@example.fr")
//	p.ClickText("Connexion")
//	p.MustSee("Mes factures")
//
// One Chromium process serves all the tests of a test binary; each Page has
// its own browser context, so its own cookies and storage. Use Main in
// TestMain to stop Chromium when the tests end; without it the process dies
// with the test binary and its profile directory is swept by the next run.
package browsertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
)

const (
	// startTimeout bounds the start of Chromium and of a tab: a cold start
	// on a loaded 2-core CI machine takes a few seconds at worst.
	startTimeout = 30 * time.Second
	// opTimeout bounds one action (navigation, click, axe run).
	opTimeout = 20 * time.Second
	// settleTime is how long a click that announced no navigation still
	// waits for one to start, for navigations started from a timer.
	settleTime = 50 * time.Millisecond
	// textWait is how long MustSee and MustNotSee wait for the page to
	// change before they fail, for pages that update themselves.
	textWait = 2 * time.Second
	// maxNodes is how many elements a violation report shows.
	maxNodes = 3
)

// Environment variables that override what the harness finds by itself.
const (
	EnvAxeJS    = "PORTAIL_AXE_JS"   // path of axe.min.js
	EnvChromium = "PORTAIL_CHROMIUM" // path of the Chromium binary
)

// axeTags are the WCAG levels that the product promises (RGAA is built on
// WCAG 2.1 AA).
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"}

// shared is the per-binary state: the Chromium process and the axe-core
// source, both costly to get and the same for every test.
var shared struct {
	mu      sync.Mutex
	browser *Browser

	axeOnce sync.Once
	axeSrc  string
	axeErr  error
}

// Browser is one Chromium process. Tests share it through New; each Page is
// a separate browser context in it.
type Browser struct {
	allocCancel context.CancelFunc
	ctx         context.Context // owns the process
	cancel      func()
	started     bool   // a graceful close is possible
	dir         string // profile directory, removed by Close
	userAgent   string
	closeOnce   sync.Once
}

// Main runs the tests of a package and then stops the shared Chromium. Call
// it from TestMain:
//
//	func TestMain(m *testing.M) { browsertest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	CloseShared()
	os.Exit(code)
}

// Shared returns the Chromium of this test binary, and starts it on the first
// call or after a crash.
func Shared(t testing.TB) *Browser {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if b := shared.browser; b != nil {
		if b.ctx.Err() == nil {
			return b
		}
		b.Close() // crashed: free its profile before starting anew
	}
	start := time.Now()
	b, err := startBrowser()
	if err != nil {
		t.Fatalf("browsertest: %v", err)
	}
	t.Logf("browsertest: Chromium started in %v", time.Since(start).Round(time.Millisecond))
	shared.browser = b
	return b
}

// New returns a fresh page in the shared Chromium, with its own cookies. The
// page closes when the test ends.
func New(t testing.TB) *Page {
	t.Helper()
	return Shared(t).NewPage(t)
}

// Close stops Chromium and removes its profile directory.
func (b *Browser) Close() {
	b.closeOnce.Do(func() {
		if b.started {
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			_ = chromedp.Cancel(ctx) // graceful close; the kill below is the fallback
			cancel()
		}
		b.cancel()
		b.allocCancel()
		os.RemoveAll(b.dir)
	})
}

func startBrowser() (*Browser, error) {
	exe, err := findChromium()
	if err != nil {
		return nil, err
	}
	dir, err := profileDir()
	if err != nil {
		return nil, err
	}
	// Chromium's own temporary files (singleton socket, shared memory) go
	// in the profile too, so that one RemoveAll or sweep cleans everything.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, err
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.UserDataDir(filepath.Join(dir, "profile")),
		chromedp.Env("TMPDIR="+tmp),
		chromedp.NoSandbox, // we run as root in containers and CI
		chromedp.DisableGPU,
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("lang", "fr-FR"), // the product is French: Accept-Language and number formats
	)
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	// chromedp's cancel waits for a token that only one call gets back when
	// the start failed, so it must run once.
	cancel := sync.OnceFunc(cancelCtx)
	b := &Browser{allocCancel: allocCancel, ctx: ctx, cancel: cancel, dir: dir}
	// The first action binds the process to its context, so it must get ctx
	// itself; the timeout is enforced beside it.
	stop := func() { cancel(); allocCancel() }
	if err := runBounded(startTimeout, stop, func() error { return chromedp.Do(ctx) }); err != nil {
		b.Close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	b.started = true
	vctx, vcancel := context.WithTimeout(ctx, opTimeout)
	defer vcancel()
	v, err := chromedp.CallBrowser(vctx, browser.GetVersion, cdp.Empty{})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("browser version: %w", err)
	}
	b.userAgent = v.UserAgent
	return b, nil
}

// runBounded runs f and calls cancel, which must stop f, if f takes longer
// than d.
func runBounded(d time.Duration, cancel func(), f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		cancel()
		<-done
		return fmt.Errorf("no answer after %v", d)
	}
}

func findChromium() (string, error) {
	const install = "install chromium (apt-get install -y chromium)"
	if p := os.Getenv(EnvChromium); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			return "", fmt.Errorf("%s=%s: %v; %s", EnvChromium, p, err, install)
		}
		return p, nil
	}
	// Debian's /usr/bin/chromium is a shell wrapper that adds desktop flags;
	// the real binary starts faster and is what we configure.
	candidates := []string{"/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"}
	for _, c := range candidates {
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", errors.New("Chromium not found: " + install + ", or set " + EnvChromium)
}

// profileDir makes a fresh Chromium profile directory named after our pid,
// and removes those of test binaries that died without Main.
func profileDir() (string, error) {
	base := filepath.Join(os.TempDir(), "portail-browsertest")
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", err
	}
	if entries, err := os.ReadDir(base); err == nil {
		for _, e := range entries {
			pidStr, _, _ := strings.Cut(e.Name(), "-")
			pid, err := strconv.Atoi(pidStr)
			if err != nil || pid == os.Getpid() {
				continue
			}
			if syscall.Kill(pid, 0) == syscall.ESRCH {
				os.RemoveAll(filepath.Join(base, e.Name()))
			}
		}
	}
	return os.MkdirTemp(base, strconv.Itoa(os.Getpid())+"-")
}

// Page is one tab in its own browser context. Its methods fail the test on
// error, so they are meant for the test goroutine.
type Page struct {
	t         testing.TB
	b         *Browser
	ctx       context.Context
	browserID cdp.BrowserContextID
	nav       *navTracker
	checked   map[string]bool // URL+content+width already checked by axe
	viewport  Viewport        // set by SetViewport; zero: the window's
}

// NewPage opens a tab in a new browser context of b; it closes with the test.
func (b *Browser) NewPage(t testing.TB) *Page {
	t.Helper()
	nav := newNavTracker()
	ctx, cancelCtx := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(nav.handle))
	cancel := sync.OnceFunc(cancelCtx) // see startBrowser
	t.Cleanup(cancel)
	if err := runBounded(startTimeout, cancel, func() error { return chromedp.Do(ctx) }); err != nil {
		t.Fatalf("browsertest: open a tab: %v", err)
	}
	p := &Page{t: t, b: b, ctx: ctx, nav: nav, checked: map[string]bool{}}
	p.browserID = chromedp.FromContext(ctx).BrowserContextID
	acceptDialog := func(*page.EventJavascriptDialogOpening) {
		// Accept from outside the event loop (a command there would
		// dead-lock), so that confirm() does not block the page.
		go func() {
			cctx, cancel := context.WithTimeout(ctx, opTimeout)
			defer cancel()
			_, _ = chromedp.Call(cctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}()
	}
	p.do("set up the tab", func(ctx context.Context) error {
		tree, err := chromedp.Call(ctx, page.GetFrameTree, cdp.Empty{})
		if err != nil {
			return err
		}
		nav.setup(tree.FrameTree.Frame.ID, acceptDialog)
		// Every Visit must reach the server, as a user's first visit does.
		if _, err := chromedp.Call(ctx, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: true}); err != nil {
			return err
		}
		// Downloads are read with Fetch; never write files from a click.
		_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior:         browser.SetDownloadBehaviorBehaviorDeny,
			BrowserContextID: p.browserID,
		})
		return err
	})
	return p
}

// do runs f with a bounded context and fails the test on error.
func (p *Page) do(what string, f func(ctx context.Context) error) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, opTimeout)
	defer cancel()
	if err := f(ctx); err != nil {
		p.t.Fatalf("browsertest: %s: %v", what, err)
	}
}

// evalJS evaluates a JavaScript expression, awaiting a promise result, and
// decodes the result into T.
func evalJS[T any](p *Page, what, expr string) T {
	p.t.Helper()
	var out T
	p.do(what, func(ctx context.Context) error {
		var err error
		out, err = chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
		return err
	})
	return out
}

// Visit navigates to url, waits for the page to load and checks its
// accessibility. An HTTP error status does not fail the test: see Status.
func (p *Page) Visit(rawURL string) {
	p.t.Helper()
	var res page.NavigateResult
	p.do("visit "+rawURL, func(ctx context.Context) error {
		var err error
		res, err = chromedp.Call(ctx, page.Navigate, page.NavigateParams{URL: rawURL})
		if err != nil {
			return err
		}
		if res.IsDownload {
			return errors.New("the response is a download: read it with Fetch")
		}
		if res.ErrorText != "" {
			return errors.New(res.ErrorText)
		}
		if res.LoaderID == "" {
			return nil // same document: nothing loads
		}
		return p.nav.waitLoad(ctx, res.LoaderID)
	})
	p.checkAccessibility()
}

// ClickText clicks the link or button whose visible text, aria-label or
// value is label (whitespace collapsed). If the click starts a navigation it
// waits for the new page, then checks the accessibility of the page.
func (p *Page) ClickText(label string) {
	p.t.Helper()
	target := evalJS[jsTarget](p, "find "+strconv.Quote(label), callJS("clickTarget", label))
	if target.Error != "" {
		p.t.Fatalf("browsertest: ClickText(%q): %s\n%s", label, target.Error, listCandidates(target.Candidates))
	}
	before := p.nav.count()
	p.do("click "+strconv.Quote(label), func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.MouseClickXY(target.X, target.Y))
	})
	p.waitNavigation(label, before)
	p.checkAccessibility()
}

// waitNavigation waits for the navigation that a click may have started.
func (p *Page) waitNavigation(label string, before int) {
	p.t.Helper()
	p.do("wait after clicking "+strconv.Quote(label), func(ctx context.Context) error {
		// The page knows at once whether the click started a navigation
		// (navigate or unprevented submit event); a destroyed context
		// means the new page already replaced it.
		announced, err := chromedp.Run(ctx, chromedp.Evaluate[bool](callJS("navigating"), chromedp.EvalAwaitPromise))
		if err != nil {
			announced = true
		}
		wait := settleTime
		if announced {
			wait = opTimeout
		}
		loader, ok := p.nav.waitStart(ctx, before, wait)
		if !ok {
			if announced {
				return errors.New("the page announced a navigation that never started")
			}
			return nil
		}
		err = p.nav.waitLoad(ctx, loader)
		var failed *navError
		if errors.As(err, &failed) {
			// A denied download or an aborted navigation leaves the old
			// page in place, as in a real browser.
			p.t.Logf("browsertest: the navigation after clicking %q did not load a page (%v)", label, err)
			return nil
		}
		return err
	})
}

// Fill types value into the input or textarea, or chooses the option of the
// select, whose label (or aria-label, or placeholder) is label.
func (p *Page) Fill(label, value string) {
	p.t.Helper()
	what := fmt.Sprintf("Fill(%q)", label)
	target := evalJS[jsTarget](p, what, callJS("fillTarget", label))
	if target.Error != "" {
		p.t.Fatalf("browsertest: %s: %s\n%s", what, target.Error, listCandidates(target.Candidates))
	}
	var got jsTarget
	switch target.Kind {
	case "type":
		// Real text input, so that input and key handlers run as for a user.
		if value != "" {
			p.do(what, func(ctx context.Context) error {
				_, err := chromedp.Call(ctx, input.InsertText, input.InsertTextParams{Text: value})
				return err
			})
		}
		got = evalJS[jsTarget](p, what, callJS("fillDone", value))
	case "set":
		got = evalJS[jsTarget](p, what, callJS("fillSet", value))
	case "select":
		got = evalJS[jsTarget](p, what, callJS("fillSelect", value))
	default:
		p.t.Fatalf("browsertest: %s: unexpected control kind %q", what, target.Kind)
	}
	if got.Error != "" {
		p.t.Fatalf("browsertest: %s with %q: %s\n%s", what, value, got.Error, listCandidates(got.Candidates))
	}
}

// Check ticks the checkbox (or radio button) whose label is label, by a click
// as a user would; it does nothing if the box is already ticked.
func (p *Page) Check(label string) {
	p.t.Helper()
	what := fmt.Sprintf("Check(%q)", label)
	target := evalJS[jsTarget](p, what, callJS("checkTarget", label))
	if target.Error != "" {
		p.t.Fatalf("browsertest: %s: %s\n%s", what, target.Error, listCandidates(target.Candidates))
	}
	if target.Kind == "done" {
		return
	}
	p.do(what, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.MouseClickXY(target.X, target.Y))
	})
	if !evalJS[bool](p, what, callJS("isChecked")) {
		p.t.Fatalf("browsertest: %s: the box is still unticked after a click on it", what)
	}
}

// Text returns the text of the page as rendered (document.body.innerText).
func (p *Page) Text() string {
	p.t.Helper()
	return evalJS[string](p, "read the page text", `document.body ? document.body.innerText : ""`)
}

// MustSee fails the test unless the page shows every text (whitespace
// collapsed). It waits up to two seconds for pages that update themselves.
func (p *Page) MustSee(texts ...string) {
	p.t.Helper()
	p.waitText("MustSee", texts, true)
}

// MustNotSee fails the test if the page shows any of the texts; it waits up
// to two seconds for them to go.
func (p *Page) MustNotSee(texts ...string) {
	p.t.Helper()
	p.waitText("MustNotSee", texts, false)
}

func (p *Page) waitText(name string, texts []string, want bool) {
	p.t.Helper()
	deadline := time.Now().Add(textWait)
	for {
		text := p.Text()
		shown := collapse(text)
		var wrong []string
		for _, s := range texts {
			if strings.Contains(shown, collapse(s)) != want {
				wrong = append(wrong, strconv.Quote(s))
			}
		}
		if len(wrong) == 0 {
			return
		}
		if time.Now().After(deadline) {
			verb := "missing from"
			if !want {
				verb = "present on"
			}
			p.t.Fatalf("browsertest: %s: %s %s %s\n--- page text ---\n%s\n---", name, strings.Join(wrong, ", "), verb, p.URL(), truncate(text, 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL returns the address of the current page.
func (p *Page) URL() string {
	p.t.Helper()
	return evalJS[string](p, "read the URL", `document.location.href`)
}

// Title returns the title of the current page.
func (p *Page) Title() string {
	p.t.Helper()
	return evalJS[string](p, "read the title", `document.title`)
}

// Status returns the HTTP status of the last main-frame document (after
// redirects), or 0 when no page came from the network.
func (p *Page) Status() int {
	return p.nav.lastStatus()
}

// Cookies returns every cookie of the page's browser context.
func (p *Page) Cookies() []*network.Cookie {
	p.t.Helper()
	var res storage.GetCookiesResult
	p.do("read cookies", func(ctx context.Context) error {
		var err error
		res, err = chromedp.CallBrowser(ctx, storage.GetCookies, storage.GetCookiesParams{BrowserContextID: p.browserID})
		return err
	})
	slices.SortFunc(res.Cookies, func(a, b *network.Cookie) int {
		return strings.Compare(a.Domain+"\x00"+a.Path+"\x00"+a.Name, b.Domain+"\x00"+b.Path+"\x00"+b.Name)
	})
	return res.Cookies
}

// SetCookie stores c in the page's browser context, for example a cookie
// that Cookies returned for another page. A host-only cookie (domain without
// a leading dot) stays host-only.
func (p *Page) SetCookie(c *network.Cookie) {
	p.t.Helper()
	param := &network.CookieParam{
		Name:         c.Name,
		Value:        c.Value,
		Path:         c.Path,
		Secure:       c.Secure,
		HTTPOnly:     c.HTTPOnly,
		SameSite:     c.SameSite,
		Priority:     c.Priority,
		PartitionKey: c.PartitionKey,
	}
	if strings.HasPrefix(c.Domain, ".") {
		param.Domain = c.Domain
	} else {
		// Chromium makes a domain cookie from a domain; a URL keeps it
		// host-only, as the server set it.
		scheme := "http"
		if c.Secure {
			scheme = "https"
		}
		param.URL = scheme + "://" + c.Domain + c.Path
	}
	if !c.Session && c.Expires > 0 {
		param.Expires = cdp.TimeSinceEpoch(c.Expires)
	}
	p.do("set cookie "+c.Name, func(ctx context.Context) error {
		_, err := chromedp.CallBrowser(ctx, storage.SetCookies, storage.SetCookiesParams{
			Cookies:          []*network.CookieParam{param},
			BrowserContextID: p.browserID,
		})
		return err
	})
}

// Fetch GETs rawURL as the browser would download it: with the cookies that
// the browser would send, its User-Agent and the current page as referrer,
// following redirects. Header names are canonical (Content-Type). Cookies that
// the response sets are not stored in the browser.
func (p *Page) Fetch(rawURL string) (status int, body []byte, headers map[string]string) {
	p.t.Helper()
	referrer := p.URL()
	p.do("fetch "+rawURL, func(ctx context.Context) error {
		client := &http.Client{
			Transport: loopbackTransport(),
			CheckRedirect: func(req *http.Request, via []*http.Request) error {
				if len(via) >= 10 {
					return errors.New("more than 10 redirects")
				}
				return p.prepareFetch(ctx, req, via[len(via)-1].URL.String())
			},
		}
		defer client.CloseIdleConnections()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
		if err != nil {
			return err
		}
		if err := p.prepareFetch(ctx, req, referrer); err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if body, err = io.ReadAll(resp.Body); err != nil {
			return err
		}
		status = resp.StatusCode
		headers = make(map[string]string, len(resp.Header))
		for k, v := range resp.Header {
			headers[k] = strings.Join(v, ", ")
		}
		return nil
	})
	return status, body, headers
}

// prepareFetch adds the headers that the browser would send with req.
func (p *Page) prepareFetch(ctx context.Context, req *http.Request, referrer string) error {
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{req.URL.String()}})
	if err != nil {
		return err
	}
	pairs := make([]string, 0, len(res.Cookies))
	for _, c := range res.Cookies {
		pairs = append(pairs, c.Name+"="+c.Value)
	}
	req.Header.Del("Cookie")
	if len(pairs) > 0 {
		req.Header.Set("Cookie", strings.Join(pairs, "; "))
	}
	req.Header.Set("User-Agent", p.b.userAgent)
	req.Header.Set("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	req.Header.Set("Accept-Language", "fr-FR,fr;q=0.9")
	// The default referrer policy (strict-origin-when-cross-origin).
	if ref, err := url.Parse(referrer); err == nil && (ref.Scheme == "http" || ref.Scheme == "https") {
		switch {
		case ref.Scheme == req.URL.Scheme && ref.Host == req.URL.Host:
			ref.Fragment = ""
			req.Header.Set("Referer", ref.String())
		case !(ref.Scheme == "https" && req.URL.Scheme == "http"):
			req.Header.Set("Referer", ref.Scheme+"://"+ref.Host+"/")
		}
	}
	return nil
}

// loopbackTransport resolves *.localhost to the loopback address, as
// Chromium does, so that Fetch reaches the same test servers as the page.
func loopbackTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return tr
}

// Screenshot writes a full-page PNG (or JPEG if path ends in .jpg/.jpeg) of
// the current page, for debugging.
func (p *Page) Screenshot(path string) {
	p.t.Helper()
	quality := 100 // PNG
	if ext := strings.ToLower(filepath.Ext(path)); ext == ".jpg" || ext == ".jpeg" {
		quality = 90
	}
	var buf []byte
	p.do("screenshot", func(ctx context.Context) error {
		var err error
		buf, err = chromedp.Run(ctx, chromedp.FullScreenshot(quality))
		return err
	})
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatalf("browsertest: screenshot: %v", err)
	}
	p.t.Logf("browsertest: screenshot of %s in %s", p.URL(), path)
}

// Violation is one axe-core rule that the page breaks.
type Violation struct {
	ID      string          `json:"id"`
	Impact  string          `json:"impact"` // minor, moderate, serious or critical
	Help    string          `json:"help"`
	HelpURL string          `json:"helpUrl"`
	Nodes   []ViolationNode `json:"nodes"`
}

// ViolationNode is one element that breaks a rule.
type ViolationNode struct {
	Target  []string `json:"target"` // CSS path, for the report only
	HTML    string   `json:"html"`
	Summary string   `json:"failureSummary"`
}

// Serious reports whether the violation fails a test.
func (v Violation) Serious() bool {
	return v.Impact == "serious" || v.Impact == "critical"
}

// AxeViolations runs axe-core (WCAG 2.0/2.1 A and AA rules) on the current
// page and returns every violation, whatever its impact, without failing the
// test. It returns nil for a document that is not HTML.
func (p *Page) AxeViolations() []Violation {
	p.t.Helper()
	src := axeSource(p.t)
	if !evalJS[bool](p, "check for axe-core", `typeof window.axe === "object"`) {
		p.do("inject axe-core", func(ctx context.Context) error {
			return chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](src))
		})
	}
	tags, _ := json.Marshal(axeTags)
	return evalJS[[]Violation](p, "run axe-core", `(async () => {
		if (!/html/.test(document.contentType)) return null;
		const r = await axe.run(document, {runOnly: {type: "tag", values: `+string(tags)+`}, resultTypes: ["violations"]});
		return r.violations.map(v => ({
			id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl,
			nodes: v.nodes.map(n => ({
				target: n.target.map(s => Array.isArray(s) ? s.join(" >>> ") : String(s)),
				html: n.html, failureSummary: n.failureSummary || "",
			})),
		}));
	})()`)
}

// checkAccessibility runs axe-core once per distinct URL and content, fails
// the test on serious or critical violations and logs the others.
func (p *Page) checkAccessibility() {
	p.t.Helper()
	// The width is part of the page: a layout may break at one width only.
	key := evalJS[string](p, "fingerprint the page", `document.location.href + "\n" + innerWidth + "\n" + document.documentElement.outerHTML`)
	sum := sha256.Sum256([]byte(key))
	id := hex.EncodeToString(sum[:])
	if p.checked[id] {
		return
	}
	p.checked[id] = true
	where, _, _ := strings.Cut(key, "\n")
	var serious, minor []Violation
	for _, v := range p.AxeViolations() {
		if v.Serious() {
			serious = append(serious, v)
		} else {
			minor = append(minor, v)
		}
	}
	if len(minor) > 0 {
		p.t.Logf("browsertest: minor accessibility issues on %s:\n%s", where, FormatViolations(minor))
	}
	if len(serious) > 0 {
		p.t.Errorf("browsertest: %d serious or critical accessibility violation(s) on %s:\n%s", len(serious), where, FormatViolations(serious))
	}
}

// FormatViolations describes violations for a test log: rule, impact, help
// and the first few elements.
func FormatViolations(vs []Violation) string {
	var b strings.Builder
	for _, v := range vs {
		fmt.Fprintf(&b, "  - [%s] %s: %s (%s)\n", v.Impact, v.ID, v.Help, v.HelpURL)
		for i, n := range v.Nodes {
			if i == maxNodes {
				fmt.Fprintf(&b, "      … and %d more\n", len(v.Nodes)-maxNodes)
				break
			}
			fmt.Fprintf(&b, "      %s  at %s\n", truncate(n.HTML, 200), strings.Join(n.Target, ", "))
		}
	}
	return strings.TrimRight(b.String(), "\n")
}

// axeSource returns axe.min.js, installing it with npm ci if needed.
func axeSource(t testing.TB) string {
	t.Helper()
	shared.axeOnce.Do(func() { shared.axeSrc, shared.axeErr = loadAxe() })
	if shared.axeErr != nil {
		t.Fatalf("browsertest: %v", shared.axeErr)
	}
	return shared.axeSrc
}

func loadAxe() (string, error) {
	if path := os.Getenv(EnvAxeJS); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", EnvAxeJS, err)
		}
		return string(b), nil
	}
	dir, err := packageDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if b, err := os.ReadFile(path); err == nil {
		return string(b), nil
	}
	out, npmErr := npmCI(dir, path)
	b, err := os.ReadFile(path)
	if err != nil {
		msg := fmt.Sprintf("axe-core is missing (%s); run: npm ci --prefix %s", path, dir)
		if npmErr != nil {
			msg += fmt.Sprintf("\nnpm ci failed: %v\n%s", npmErr, out)
		}
		return "", errors.New(msg)
	}
	return string(b), nil
}

// npmCI runs npm ci in dir unless another test binary did it meanwhile: the
// file lock serialises the binaries that go test runs in parallel.
func npmCI(dir, want string) ([]byte, error) {
	sum := sha256.Sum256([]byte(dir))
	lockPath := filepath.Join(os.TempDir(), "portail-browsertest-npm-"+hex.EncodeToString(sum[:8])+".lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, err
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	if _, err := os.Stat(want); err == nil {
		return nil, nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return nil, errors.New("npm not found: install it (apt-get install -y npm)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, npm, "ci", "--prefix", dir, "--no-audit", "--no-fund").CombinedOutput()
}

// packageDir finds pkg/browsertest: from the compiled source path, or, for a
// binary built with -trimpath, from the module root above the working
// directory.
func packageDir() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Dir(file)
		if _, err := os.Stat(filepath.Join(dir, "package.json")); err == nil {
			return dir, nil
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "pkg", "browsertest"), nil
		}
		if filepath.Dir(dir) == dir {
			return "", fmt.Errorf("cannot find pkg/browsertest from %s; set %s", wd, EnvAxeJS)
		}
	}
}

// navTracker follows the main-frame documents of a tab from its events. Its
// handle method runs on the tab's event loop.
type navTracker struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each change
	frame   cdp.FrameID
	navs    []*navigation // oldest first
	dialogs func(*page.EventJavascriptDialogOpening)
}

type navigation struct {
	loader  cdp.LoaderID
	request network.RequestID
	status  int
	url     string
	loaded  bool
	failed  string
}

// navError is a navigation that ended without a page.
type navError struct{ url, text string }

func (e *navError) Error() string { return e.url + ": " + e.text }

func newNavTracker() *navTracker {
	return &navTracker{changed: make(chan struct{})}
}

// setup starts the tracking of the main frame id.
func (n *navTracker) setup(id cdp.FrameID, onDialog func(*page.EventJavascriptDialogOpening)) {
	n.mu.Lock()
	n.frame = id
	n.dialogs = onDialog
	n.mu.Unlock()
}

func (n *navTracker) handle(ev any) {
	if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
		n.mu.Lock()
		f := n.dialogs
		n.mu.Unlock()
		if f != nil {
			f(d)
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.frame == "" {
		return
	}
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		if ev.Type != network.ResourceTypeDocument || ev.FrameID != n.frame {
			return
		}
		nv := n.find(ev.LoaderID)
		if nv == nil {
			nv = &navigation{loader: ev.LoaderID}
			n.navs = append(n.navs, nv)
		}
		nv.request = ev.RequestID // the same across redirects, but be safe
		nv.url = ev.Request.URL
	case *network.EventResponseReceived:
		if ev.Type != network.ResourceTypeDocument || ev.FrameID != n.frame {
			return
		}
		if nv := n.find(ev.LoaderID); nv != nil {
			nv.status = int(ev.Response.Status)
			nv.url = ev.Response.URL
		}
	case *network.EventLoadingFailed:
		for _, nv := range n.navs {
			if nv.request == ev.RequestID && !nv.loaded {
				nv.failed = ev.ErrorText
			}
		}
	case *page.EventLifecycleEvent:
		if ev.FrameID != n.frame {
			return
		}
		nv := n.find(ev.LoaderID)
		if nv == nil && ev.Name == "init" {
			// A document that came from no request (about:blank, data:).
			nv = &navigation{loader: ev.LoaderID}
			n.navs = append(n.navs, nv)
		}
		if nv != nil && ev.Name == "load" {
			nv.loaded = true
		}
	default:
		return
	}
	close(n.changed)
	n.changed = make(chan struct{})
}

func (n *navTracker) find(loader cdp.LoaderID) *navigation {
	for i := len(n.navs) - 1; i >= 0; i-- {
		if n.navs[i].loader == loader {
			return n.navs[i]
		}
	}
	return nil
}

func (n *navTracker) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.navs)
}

func (n *navTracker) lastStatus() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.navs) - 1; i >= 0; i-- {
		if nv := n.navs[i]; nv.failed == "" {
			return nv.status
		}
	}
	return 0
}

// wait calls cond under the lock at each change until it returns true, the
// context ends or d passes.
func (n *navTracker) wait(ctx context.Context, d time.Duration, cond func() bool) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		n.mu.Lock()
		ok := cond()
		changed := n.changed
		n.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-changed:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// waitStart waits up to d for a navigation after the first before, and
// returns the loader of the newest.
func (n *navTracker) waitStart(ctx context.Context, before int, d time.Duration) (cdp.LoaderID, bool) {
	var loader cdp.LoaderID
	ok := n.wait(ctx, d, func() bool {
		if len(n.navs) > before {
			loader = n.navs[len(n.navs)-1].loader
			return true
		}
		return false
	})
	return loader, ok
}

// waitLoad waits for the load event of the document of loader; it returns a
// *navError if the navigation failed.
func (n *navTracker) waitLoad(ctx context.Context, loader cdp.LoaderID) error {
	var nerr error
	ok := n.wait(ctx, opTimeout, func() bool {
		nv := n.find(loader)
		switch {
		case nv == nil:
			return false
		case nv.failed != "":
			nerr = &navError{url: nv.url, text: nv.failed}
			return true
		case nv.loaded:
			return true
		}
		// A newer navigation replaced this one (a redirect from script).
		return n.navs[len(n.navs)-1] != nv && n.navs[len(n.navs)-1].loaded
	})
	if !ok {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("waiting for the page to load: %w", err)
		}
		return errors.New("the page did not finish loading")
	}
	return nerr
}

// jsTarget is what the page helpers return.
type jsTarget struct {
	Error      string   `json:"error"`
	Candidates []string `json:"candidates"`
	Kind       string   `json:"kind"`
	X          float64  `json:"x"`
	Y          float64  `json:"y"`
}

func listCandidates(c []string) string {
	if len(c) == 0 {
		return "(no candidates on the page)"
	}
	return "candidates:\n  " + strings.Join(c, "\n  ")
}

// callJS builds a call of a page helper with JSON arguments; the helpers are
// installed once per document.
func callJS(fn string, args ...any) string {
	parts := make([]string, len(args))
	for i, a := range args {
		b, err := json.Marshal(a)
		if err != nil {
			panic(err) // only strings are passed
		}
		parts[i] = string(b)
	}
	return "(window.__portailBT || (window.__portailBT = " + pageHelpers + "))." + fn + "(" + strings.Join(parts, ", ") + ")"
}

func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// pageHelpers is the JavaScript that finds elements by their visible labels.
// It returns plain objects; errors come back as {error, candidates}.
const pageHelpers = `(() => {
	const norm = s => (s || "").replace(/\s+/g, " ").trim();
	const visible = el => el.isConnected &&
		el.checkVisibility({visibilityProperty: true}) &&
		[...el.getClientRects()].some(r => r.width > 0 && r.height > 0);
	// Text as rendered, without the controls that a label may wrap.
	const textOf = n => {
		if (n.nodeType === Node.TEXT_NODE) return n.nodeValue;
		if (n.nodeType !== Node.ELEMENT_NODE) return "";
		if (n.matches("input, select, textarea, button, datalist, script, style")) return "";
		if (!n.checkVisibility({visibilityProperty: true})) return "";
		if (n.tagName === "BR") return " ";
		let s = "";
		for (const c of n.childNodes) s += textOf(c);
		return getComputedStyle(n).display.startsWith("inline") ? s : " " + s + " ";
	};
	const byIds = ids => (ids || "").split(/\s+/).filter(Boolean)
		.map(id => document.getElementById(id)).filter(Boolean).map(e => norm(e.textContent)).join(" ");
	const uniq = a => [...new Set(a.map(norm).filter(Boolean))];

	const clickableSel = "a[href], button, input[type=submit], input[type=button], input[type=reset], input[type=image], summary, [role=button], [role=link]";
	const clickNames = el => {
		const names = [el.getAttribute("aria-label"), byIds(el.getAttribute("aria-labelledby"))];
		if (el.tagName === "INPUT") names.push(el.value, el.alt);
		else {
			names.push(el.innerText);
			if (!norm(el.innerText)) names.push(...[...el.querySelectorAll("img[alt]")].map(i => i.alt));
		}
		return uniq(names);
	};
	const kindOf = el => el.tagName === "A" || el.getAttribute("role") === "link" ? "link" : "button";
	const describeClick = el => kindOf(el) + " " + (clickNames(el).map(n => JSON.stringify(n)).join(" / ") || "(no text) " + el.outerHTML.slice(0, 120));

	const controlNames = el => {
		const names = [el.getAttribute("aria-label"), byIds(el.getAttribute("aria-labelledby")), el.getAttribute("placeholder")];
		for (const l of el.labels || []) {
			const t = norm(textOf(l));
			names.push(t, t.replace(/\s*\*$/, "")); // "Nom *" answers to "Nom"
		}
		return uniq(names);
	};
	const describeControl = el => {
		const type = el.tagName === "INPUT" ? el.type : el.tagName.toLowerCase();
		return type + " " + (controlNames(el).map(n => JSON.stringify(n)).join(" / ") || "(no label) " + el.outerHTML.slice(0, 120));
	};
	// The innermost matches only: a button inside a link is one target.
	const innermost = els => els.filter(e => !els.some(o => o !== e && e.contains(o)));

	// A point of el that a click reaches, or null when something covers it.
	const clickPoint = (el, accept) => {
		el.scrollIntoView({block: "center", inline: "center"});
		for (const r of el.getClientRects()) {
			if (r.width <= 0 || r.height <= 0) continue;
			const x = r.left + r.width / 2, y = r.top + r.height / 2;
			const hit = document.elementFromPoint(x, y);
			if (hit && accept(hit)) return {x, y};
		}
		return null;
	};
	const covered = el => {
		const r = el.getBoundingClientRect();
		const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
		return ["covered by " + (hit ? hit.outerHTML.slice(0, 160) : "nothing (outside the viewport)")];
	};

	// Navigation probe: armed before a click, read after it.
	const probe = () => {
		if (!window.__portailBTNav) {
			const s = window.__portailBTNav = {navigate: null, submit: null};
			if (window.navigation) navigation.addEventListener("navigate", e => { s.navigate = e; });
			addEventListener("submit", e => { s.submit = e; }, true);
		}
		return window.__portailBTNav;
	};
	const announced = () => {
		const s = probe();
		const n = s.navigate;
		// mailto: and other external schemes leave the page in place.
		if (n && !n.defaultPrevented && !n.destination.sameDocument && n.downloadRequest === null &&
			/^(https?|data|blob|about):$/.test(new URL(n.destination.url).protocol)) return true;
		const e = s.submit;
		if (!e || e.defaultPrevented) return false;
		const f = e.target, by = e.submitter;
		const method = (by && by.getAttribute("formmethod")) || f.getAttribute("method") || "";
		const target = (by && by.getAttribute("formtarget")) || f.getAttribute("target") || "";
		return method.toLowerCase() !== "dialog" && (target === "" || target === "_self");
	};

	return {
		clickTarget(label) {
			const want = norm(label);
			const all = [...document.querySelectorAll(clickableSel)].filter(visible);
			const hits = innermost(all.filter(el => clickNames(el).includes(want)));
			if (hits.length === 0) return {error: "no visible link or button reads " + JSON.stringify(want), candidates: uniq(all.map(describeClick))};
			if (hits.length > 1) return {error: hits.length + " links or buttons read " + JSON.stringify(want), candidates: hits.map(describeClick)};
			const el = hits[0];
			if (el.disabled || el.getAttribute("aria-disabled") === "true") return {error: "it is disabled", candidates: [describeClick(el)]};
			const pt = clickPoint(el, hit => hit === el || el.contains(hit));
			if (!pt) return {error: "it cannot be clicked", candidates: covered(el)};
			const s = probe();
			s.navigate = null;
			s.submit = null;
			return pt;
		},
		arm() {
			const s = probe();
			s.navigate = null;
			s.submit = null;
			return true;
		},
		navigating() {
			if (announced()) return true;
			// A form submission may start in the next task.
			return new Promise(r => setTimeout(() => r(announced()), 0));
		},
		fillTarget(label) {
			const want = norm(label);
			const all = [...document.querySelectorAll("input:not([type=hidden]), textarea, select")].filter(visible);
			const hits = all.filter(el => controlNames(el).includes(want));
			if (hits.length === 0) return {error: "no visible field is labelled " + JSON.stringify(want), candidates: all.map(describeControl)};
			if (hits.length > 1) return {error: hits.length + " fields are labelled " + JSON.stringify(want), candidates: hits.map(describeControl)};
			const el = window.__portailBTEl = hits[0];
			if (el.disabled || el.readOnly) return {error: "the field is disabled or read-only", candidates: [describeControl(el)]};
			if (el.tagName === "SELECT") return {kind: "select"};
			if (el.tagName === "INPUT" && ["checkbox", "radio"].includes(el.type)) return {error: "it is a " + el.type + ": use Check", candidates: [describeControl(el)]};
			if (el.tagName === "INPUT" && ["file", "submit", "button", "reset", "image"].includes(el.type)) return {error: "Fill cannot fill a " + el.type + " input", candidates: [describeControl(el)]};
			el.scrollIntoView({block: "center"});
			if (el.tagName === "INPUT" && ["date", "time", "datetime-local", "month", "week", "color", "range"].includes(el.type)) return {kind: "set"};
			el.focus();
			this.setValue(el, "");
			return {kind: "type"};
		},
		setValue(el, v) {
			const proto = Object.getPrototypeOf(el);
			Object.getOwnPropertyDescriptor(proto, "value").set.call(el, v);
			el.dispatchEvent(new Event("input", {bubbles: true}));
		},
		fillDone(v) {
			const el = window.__portailBTEl;
			el.dispatchEvent(new Event("change", {bubbles: true}));
			if (el.value !== v) return {error: "the field refused the value; it holds " + JSON.stringify(el.value)};
			return {kind: "done"};
		},
		fillSet(v) {
			const el = window.__portailBTEl;
			this.setValue(el, v);
			el.dispatchEvent(new Event("change", {bubbles: true}));
			if (el.value !== v) return {error: "the field refused the value; it holds " + JSON.stringify(el.value)};
			return {kind: "done"};
		},
		fillSelect(v) {
			const el = window.__portailBTEl, want = norm(v);
			const opts = [...el.options];
			let hits = opts.filter(o => norm(o.text) === want);
			if (hits.length === 0) hits = opts.filter(o => o.value === v);
			if (hits.length !== 1) return {error: (hits.length ? "several options" : "no option") + " match", candidates: opts.map(o => JSON.stringify(norm(o.text)) + " (value " + JSON.stringify(o.value) + ")")};
			if (hits[0].disabled) return {error: "the option is disabled"};
			el.focus();
			hits[0].selected = true;
			el.dispatchEvent(new Event("input", {bubbles: true}));
			el.dispatchEvent(new Event("change", {bubbles: true}));
			return {kind: "done"};
		},
		checkTarget(label) {
			const want = norm(label);
			const shown = el => visible(el) || [...(el.labels || [])].some(visible);
			const all = [...document.querySelectorAll("input[type=checkbox], input[type=radio]")].filter(shown);
			const hits = all.filter(el => controlNames(el).includes(want));
			if (hits.length === 0) return {error: "no visible checkbox or radio button is labelled " + JSON.stringify(want), candidates: all.map(describeControl)};
			if (hits.length > 1) return {error: hits.length + " checkboxes are labelled " + JSON.stringify(want), candidates: hits.map(describeControl)};
			const el = window.__portailBTEl = hits[0];
			if (el.disabled) return {error: "it is disabled", candidates: [describeControl(el)]};
			if (el.checked) return {kind: "done"};
			// Click the box, or its label when the box is styled away.
			const mine = hit => hit === el || [...el.labels].some(l => l.contains(hit));
			for (const t of [el, ...el.labels]) {
				if (!visible(t)) continue;
				const pt = clickPoint(t, mine);
				if (pt) return {kind: "click", x: pt.x, y: pt.y};
			}
			return {error: "it cannot be clicked", candidates: covered(el)};
		},
		isChecked() { return window.__portailBTEl.checked; },
	};
})()`
