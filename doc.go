// Package scpgate holds the domain types shared by every scpgate service:
// the event and command documents published to NATS, their kinds and
// statuses, and the store interface of the event history.
//
// It imports nothing of NATS, SQL or the wire protocol: services translate
// into and out of these types at their edges.
package scpgate
