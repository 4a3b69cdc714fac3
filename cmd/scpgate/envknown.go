package main

// driverOnlyOtherEnv lists the SCPGATE_ variables of the ingest, commander
// and dev roles that the driver does not read itself, so that the driver-only build (go build -tags driveronly,
// the scpgate-driver binary) does not warn about them in an environment
// shared with those roles, as the full binary does not. The full build
// reads them from the config structs; TestDriverOnlyOtherEnv checks that
// this list matches them (its failure prints the list to paste here).
var driverOnlyOtherEnv = []string{
	"SCPGATE_API_TOKENS",
	"SCPGATE_API_TOKENS_FILE",
	"SCPGATE_COMMAND_DEFAULT_TTL",
	"SCPGATE_COMMAND_MAX_TTL",
	"SCPGATE_COMMAND_MAX_WAIT",
	"SCPGATE_COMMAND_SWEEP_GRACE",
	"SCPGATE_COMMAND_SWEEP_INTERVAL",
	"SCPGATE_CONSOLE",
	"SCPGATE_CONSOLE_INGEST_URL",
	"SCPGATE_DB",
	"SCPGATE_INGEST_BATCH",
	"SCPGATE_INGEST_DURABLE",
	"SCPGATE_INGEST_MAX_LAG",
	"SCPGATE_INGEST_STATE_KV",
	"SCPGATE_INGEST_WRITERS",
}
