// Package bench holds the scenarios of `scpgate bench`: end-to-end
// measurements of a whole scpgate system on one machine, each with its
// baseline measured in the same run where one exists.
//
//   - connections: the RSS of an empty `scpgate driver` (the command as
//     deployed, settled); then ramp N controllers into one driver: connect
//     rate, driver RSS per idle session, driver CPU at idle.
//   - events: the highest sustained event rate with ack-after-persist, next
//     to raw JetStream publishing of the same events; publish-to-ack
//     latency at a steady rate.
//   - commands: the HTTP command round trip (submit with ?wait to result)
//     at a steady rate over a large fleet.
//   - storm: controllers with buffered transactions connect at once, and
//     again after one of two drivers is killed; time to store everything
//     against the raw publish rate, with loss and duplicates counted.
//   - ingest: rows/s into SQLite and PostgreSQL and the lag at a steady
//     event rate.
//
// NATS runs embedded in the bench process unless an external server is
// named. Drivers, simulated fleets and raw publishers run in child
// processes (RunChild): a driver holds one file descriptor per session,
// so it cannot share a process with its fleet under a 20,000 open-file
// cap, and its memory and CPU are only measurable on their own. Children
// exit when their stdin closes, so an interrupted bench leaves none
// behind.
package bench
