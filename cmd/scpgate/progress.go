//go:build !driveronly

package main

import (
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
)

// progress draws a progress bar on stderr when stderr is a terminal, and
// does nothing otherwise (logs and pipes stay clean). Its Update method
// fits the progress callbacks of replay and ingest rebuild.
type progress struct {
	mu  sync.Mutex
	bar *progressbar.ProgressBar
	max int64
}

// newProgress returns a progress bar titled desc, or an inert one when
// stderr is not a terminal.
func newProgress(desc string) *progress {
	p := &progress{}
	if isTerminal(os.Stderr) {
		p.bar = progressbar.NewOptions64(-1,
			progressbar.OptionSetDescription(desc),
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionThrottle(100_000_000),
			progressbar.OptionClearOnFinish(),
		)
	}
	return p
}

// Update sets the bar to done out of total.
func (p *progress) Update(done, total uint64) {
	if p.bar == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if int64(total) != p.max {
		p.max = int64(total)
		p.bar.ChangeMax64(p.max)
	}
	_ = p.bar.Set64(int64(done))
}

// Finish clears the bar.
func (p *progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}
