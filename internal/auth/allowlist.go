package auth

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/scpgate/scpgate/streams"
)

// DefaultReloadInterval is how often a watched file is checked for
// changes.
const DefaultReloadInterval = 2 * time.Second

// AllowList is the set of controller serials admitted to a driver, read
// from a file: one serial per line, '#' starts a comment, blank lines are
// skipped. Allowed is lock-free; Reload swaps the whole set at once.
type AllowList struct {
	path    string
	log     zerolog.Logger
	set     atomic.Pointer[map[string]struct{}]
	mu      sync.Mutex // serializes Reload; guards stamp
	stamp   fileStamp  // of the file last loaded
	reloads atomic.Uint64
	errors  atomic.Uint64
}

// fileStamp identifies a version of a file well enough to notice edits.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{mod: fi.ModTime(), size: fi.Size()}, nil
}

// LoadAllowList reads the allow-list at path. A line that is not a valid
// serial is skipped with a warning (no controller could connect with it).
func LoadAllowList(path string, log zerolog.Logger) (*AllowList, error) {
	l := &AllowList{path: path, log: log.With().Str("allow_list", path).Logger()}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Reload reads the file again and replaces the set. On error the previous
// set stays in force.
func (l *AllowList) Reload() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	st, _ := stampOf(l.path)
	lines, err := readLines(l.path)
	if err != nil {
		l.errors.Add(1)
		return fmt.Errorf("read allow-list: %w", err)
	}
	set := make(map[string]struct{}, len(lines))
	for _, s := range lines {
		if err := streams.ValidSerial(s); err != nil {
			l.log.Warn().Str("line", s).Err(err).Msg("allow-list entry skipped")
			continue
		}
		set[s] = struct{}{}
	}
	l.set.Store(&set)
	l.stamp = st
	l.reloads.Add(1)
	l.log.Info().Int("serials", len(set)).Msg("allow-list loaded")
	return nil
}

// Allowed reports whether serial is on the list. It is the driver's
// Options.Admit.
func (l *AllowList) Allowed(serial string) bool {
	_, ok := (*l.set.Load())[serial]
	return ok
}

// Len returns the number of serials on the list.
func (l *AllowList) Len() int { return len(*l.set.Load()) }

// Loads returns how many times the file was loaded successfully, and
// how many loads failed.
func (l *AllowList) Loads() (ok, failed uint64) { return l.reloads.Load(), l.errors.Load() }

// Watch reloads the list on SIGHUP and whenever the file's modification
// time or size changes (checked every interval; 0 means
// DefaultReloadInterval), until ctx ends. A failed reload is logged and
// the previous list stays in force.
func (l *AllowList) Watch(ctx context.Context, interval time.Duration) {
	current := func() fileStamp {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.stamp
	}
	watchFile(ctx, interval, func() bool { return changed(current(), l.path) }, func() {
		if err := l.Reload(); err != nil {
			l.log.Error().Err(err).Msg("allow-list reload failed; keeping the previous list")
		}
	})
}

// changed reports whether the file at path no longer has stamp st. A file
// that cannot be read counts as unchanged: its reload would fail.
func changed(st fileStamp, path string) bool {
	now, err := stampOf(path)
	return err == nil && now != st
}

// watchFile calls reload on SIGHUP and when changed reports true (checked
// every interval), until ctx ends. reload and changed run on this
// goroutine.
func watchFile(ctx context.Context, interval time.Duration, changed func() bool, reload func()) {
	if interval <= 0 {
		interval = DefaultReloadInterval
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reload()
		case <-t.C:
			if changed() {
				reload()
			}
		}
	}
}

// tokensFile is a token list read from a file and kept current: it is
// reloaded on SIGHUP and when the file changes, into its Authenticator.
type tokensFile struct {
	path  string
	auth  *Authenticator
	log   zerolog.Logger
	stamp fileStamp
}

// WatchTokensFile keeps a's tokens in step with the file at path (see
// AllowList.Watch) until ctx ends. A file that fails to parse, or that
// would leave no token, is logged and ignored.
func WatchTokensFile(ctx context.Context, path string, a *Authenticator, interval time.Duration, log zerolog.Logger) {
	// The zero stamp makes the first check read the file again: it may
	// have changed between its first load and this call.
	f := &tokensFile{path: path, auth: a, log: log.With().Str("tokens_file", path).Logger()}
	watchFile(ctx, interval, func() bool { return changed(f.stamp, path) }, f.reload)
}

func (f *tokensFile) reload() {
	f.stamp, _ = stampOf(f.path)
	t, err := LoadTokensFile(f.path)
	if err != nil {
		f.log.Error().Err(err).Msg("API tokens reload failed; keeping the previous tokens")
		return
	}
	if !f.auth.SetTokens(t) {
		f.log.Error().Msg("API tokens file now has no token; keeping the previous tokens")
		return
	}
	f.log.Info().Int("tokens", t.Len()).Msg("API tokens reloaded")
}
