// Package scpbridge is the SCP/TCP v1 controller protocol: frame layout,
// typed messages, a zero-allocation frame reader, and both ends of a session
// as small state machines (HostSession for the driver, ControllerSession for
// controllers and the simulator).
//
// It performs no network I/O of its own beyond reading frames from an
// io.Reader, and knows nothing of NATS. docs/protocol.md specifies every
// byte; testdata/ holds golden frames that keep the two in step.
package scpbridge
