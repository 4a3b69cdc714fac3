// Package sim simulates SCP/TCP controllers, alone or as a fleet: the load
// generator and loss checker of scpgate.
//
// A simulated Controller behaves like a real panel. It dials its host,
// says hello with its serial, model, firmware, boot epoch and the state of
// its transaction log, and keeps every transaction in that log until the
// host acknowledges it; after a reconnect it sends again from the oldest
// unacknowledged one (last acknowledged + 1, unless the log overflowed).
// A full log overwrites its oldest transaction and reports the loss with a
// system/log_over_limit transaction whose Lost field counts the overwritten
// ones. It logs a realistic mix of events at a configurable rate (card
// reads granted and denied with their door cycles, inputs, outputs, rare
// forced doors, tamper and power), heartbeats when idle, declares the host
// offline when it falls silent past the welcome's offline time, and
// reconnects with exponential backoff and full jitter, honouring the
// host's retry_after (reject) and reconnect_after (bye).
//
// Commands are answered OK, or NAK with the reason a real panel gives:
// unknown_command for a code it does not know, out_of_range for a door or
// output number outside 1..n, bad_header or content_error for a body that
// does not decode, and busy or content_error at random at Config.NakRate.
// Accepted commands take effect: a momentary unlock logs unlocked, maybe
// opened, locked and secure like a real door; output commands log output
// transactions; set_time moves the controller clock and logs time_set;
// reset logs reset and reconnects; id_request and tran_status answer with
// a detail string ("model=... firmware=... serial=...",
// "capacity=... oldest=... last_logged=... last_acked=... boot_epoch=...").
// A tag seen twice in one boot epoch counts as a duplicate command; if the
// first was carried out, the repeat is answered OK as before without acting
// again, otherwise it is decided afresh.
//
// Log status semantics: Oldest is the oldest unacknowledged serial the log
// still holds (0 when every logged transaction is acknowledged); serials
// are per boot epoch and start at 1; the boot epoch changes only when the
// log restarts (Controller.Restart).
//
// Overflow reports: the log_over_limit transaction is logged when the host
// can hear about the loss (at the start of the next session, or after the
// next acknowledgement), not at each overwrite, so reports never overwrite
// more of a full log; it may briefly hold capacity+1 entries for it.
//
// Memory: a controller's log grows on demand (32 bytes per unacknowledged
// transaction) and shrinks once acknowledged; a connected controller holds
// two goroutines, a 512-byte read buffer and no write buffer while idle.
// Measured: about 5 KiB of heap and 8 KiB of goroutine stacks per idle
// connected controller; 19,000 of them fit in one process (about 320 MiB).
package sim
