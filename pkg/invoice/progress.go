package invoice

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
)

// CLIProgress returns an ImportOptions.Progress that draws a progress bar on
// w (the CLI passes os.Stderr). The bar is created at the first call, when
// the number of lines is known, and grows if the estimate was short.
func CLIProgress(w io.Writer) func(done, total int) {
	var (
		mu       sync.Mutex
		bar      *progressbar.ProgressBar
		finished bool
	)
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if finished {
			return
		}
		total = max(total, done)
		if bar == nil {
			bar = progressbar.NewOptions(max(total, 1),
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription("Import des factures"),
				progressbar.OptionSetItsString("lignes"),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
			)
		}
		if total > bar.GetMax() {
			bar.ChangeMax(total)
		}
		if done >= total {
			finished = true
			bar.Finish()
			return
		}
		bar.Set(done)
	}
}
