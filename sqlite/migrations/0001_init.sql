-- Events, command results, and the current state derived from events.
-- Times are Unix nanoseconds (UTC).

CREATE TABLE events (
	id            TEXT PRIMARY KEY,    -- <controller>.<boot epoch>.<seq>, or the presence event id
	controller    TEXT NOT NULL,
	kind          TEXT NOT NULL,
	boot_epoch    INTEGER NOT NULL,
	seq           INTEGER NOT NULL,
	time_ns       INTEGER NOT NULL,    -- controller's timestamp
	received_ns   INTEGER NOT NULL,    -- when the driver read it
	code          TEXT NOT NULL,
	source_type   TEXT,
	source_number INTEGER,
	doc           TEXT NOT NULL        -- the event as published (JSON)
);
CREATE INDEX events_time ON events (time_ns, id);
CREATE INDEX events_controller_time ON events (controller, time_ns, id);
CREATE INDEX events_kind_time ON events (kind, time_ns, id);

CREATE TABLE results (
	id          TEXT PRIMARY KEY,      -- command id
	controller  TEXT NOT NULL,
	type        TEXT NOT NULL,
	status      TEXT NOT NULL,
	seq         INTEGER NOT NULL,      -- stream sequence of the command in SCP_COMMANDS
	created_ns  INTEGER NOT NULL,
	finished_ns INTEGER NOT NULL,
	doc         TEXT NOT NULL          -- the result as published (JSON)
);
CREATE INDEX results_controller_finished ON results (controller, finished_ns);

-- One row per controller. p_* mark the presence event that set online,
-- session and reason (unset while p_event is ''); i_* the online event
-- that set model, firmware and remote.
CREATE TABLE controllers (
	serial       TEXT PRIMARY KEY,
	last_seen_ns INTEGER NOT NULL,
	online       INTEGER NOT NULL DEFAULT 0,
	session      TEXT NOT NULL DEFAULT '',
	reason       TEXT NOT NULL DEFAULT '',
	p_event      TEXT NOT NULL DEFAULT '',
	p_epoch      INTEGER NOT NULL DEFAULT 0,
	p_seq        INTEGER NOT NULL DEFAULT 0,
	p_time_ns    INTEGER NOT NULL DEFAULT 0,
	p_rank       INTEGER NOT NULL DEFAULT 0,
	model        TEXT NOT NULL DEFAULT '',
	firmware     TEXT NOT NULL DEFAULT '',
	remote       TEXT NOT NULL DEFAULT '',
	i_event      TEXT NOT NULL DEFAULT '',
	i_epoch      INTEGER NOT NULL DEFAULT 0,
	i_seq        INTEGER NOT NULL DEFAULT 0,
	i_time_ns    INTEGER NOT NULL DEFAULT 0
);

-- Current value of each door position (status), door lock (lock), input
-- and output (state), with the event that set it.
CREATE TABLE point_state (
	controller TEXT NOT NULL,
	type       TEXT NOT NULL,          -- door, input, output
	number     INTEGER NOT NULL,
	aspect     TEXT NOT NULL,          -- status, lock, state
	code       TEXT NOT NULL,
	event      TEXT NOT NULL,
	boot_epoch INTEGER NOT NULL,
	seq        INTEGER NOT NULL,
	time_ns    INTEGER NOT NULL,
	PRIMARY KEY (controller, type, number, aspect)
);
