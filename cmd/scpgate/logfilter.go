package main

import (
	"bytes"
	"io"
)

// sessionDemoter sits between a JSON zerolog logger and its output and
// demotes the info lines of single controller sessions (lines with a
// "session" field) to debug: `scpgate dev` with a simulated fleet would
// otherwise print a line per controller connect and disconnect. They are
// written with level debug when show is set, and dropped otherwise; a
// periodic summary line counts them instead. Warnings and errors pass.
type sessionDemoter struct {
	out  io.Writer
	show bool
}

var (
	sessionField = []byte(`"session":"`)
	infoLevel    = []byte(`"level":"info"`)
	debugLevel   = []byte(`"level":"debug"`)
)

// Write implements io.Writer; zerolog writes one line per call.
func (w *sessionDemoter) Write(p []byte) (int, error) {
	if !bytes.Contains(p, sessionField) || !bytes.Contains(p, infoLevel) {
		return w.out.Write(p)
	}
	if !w.show {
		return len(p), nil
	}
	q := bytes.Replace(p, infoLevel, debugLevel, 1)
	if _, err := w.out.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}
