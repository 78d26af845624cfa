//go:build race

package wait

// raceEnabled: the race detector multiplies what code allocates.
const raceEnabled = true
