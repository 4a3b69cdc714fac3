package driver

// SetBeforeWelcome makes every session run fn between taking its serial on
// the driver and queueing its welcome, widening that window for tests. It
// returns a function that removes fn. Set it before the driver starts.
func SetBeforeWelcome(fn func()) (restore func()) {
	beforeWelcome = fn
	return func() { beforeWelcome = nil }
}

// StaleReads makes the next n first reads of command queues of d answer
// "not found", as a replica that has not stored the newest commands yet
// would. Call it between New and Start.
func StaleReads(d *Driver, n int64) { d.cmds.SimulateStaleReads(n) }
