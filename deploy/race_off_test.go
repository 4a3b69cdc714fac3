//go:build !race

package deploy_test

// raceEnabled is set when the tests run with -race.
const raceEnabled = false
