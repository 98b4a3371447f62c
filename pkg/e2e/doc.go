// Package e2e holds the browser journeys: Chromium, driven by chromedp,
// walks the user manual by visible labels against the whole portal running
// on real services, and axe-core checks every page it visits.
package e2e
