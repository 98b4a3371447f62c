package browsertest

// CloseShared stops the shared Chromium of this test binary, if started.
// For TestMain functions that already wrap m.Run (e.g. dbtest.Main):
//
//	func TestMain(m *testing.M) { dbtest.Main(m, browsertest.CloseShared) }
func CloseShared() {
	shared.mu.Lock()
	b := shared.browser
	shared.browser = nil
	shared.mu.Unlock()
	if b != nil {
		b.Close()
	}
}
