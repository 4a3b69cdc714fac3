package driver

// SetBeforeWelcome makes every session run fn between taking its serial on
// the driver and queueing its welcome, widening that window for tests. It
// returns a function that removes fn. Set it before the driver starts.
func SetBeforeWelcome(fn func()) (restore func()) {
	beforeWelcome = fn
	return func() { beforeWelcome = nil }
}
