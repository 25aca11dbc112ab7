package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startProfiles starts a CPU profile into cpuFile (if set) and returns a function that
// stops it and writes an allocations profile into memFile (if set). They serve `make
// bench-full` and tuning; a SIGKILLed agent leaves an unusable CPU profile.
func startProfiles(cpuFile, memFile string) (stop func(), err error) {
	var cpu *os.File
	if cpuFile != "" {
		cpu, err = os.Create(cpuFile)
		if err != nil {
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			_ = cpu.Close()
			return nil, fmt.Errorf("cpuprofile: %w", err)
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			_ = cpu.Close()
		}
		if memFile == "" {
			return
		}
		f, err := os.Create(memFile)
		if err != nil {
			return
		}
		defer f.Close()
		_ = pprof.Lookup("allocs").WriteTo(f, 0)
	}, nil
}
