//go:build race

package deploy_test

// raceEnabled is set when the tests run with -race: the scpgate binary
// they run is then built with -race too (sharing the build cache of the
// other packages' race tests, and checking the driver processes for races).
const raceEnabled = true
