package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mrv-agent/mrv-agent/collector/modbus"
	"github.com/mrv-agent/mrv-agent/config"
)

// sourcePlan is the request plan of one Modbus source.
type sourcePlan struct {
	name, url, transport string
	requests             []modbus.Request
}

// modbusPlans plans every Modbus source as the agent would at start-up (no I/O), so that
// validate also reports what only the collector checks (a baud rate the driver cannot set).
func modbusPlans(cfg *config.Config) ([]sourcePlan, error) {
	var plans []sourcePlan
	var errs []error
	for i, sc := range cfg.Sources {
		if sc.Kind != "modbus" {
			continue
		}
		s, err := modbus.New(sc, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("sources[%d] (%s): %w", i, sc.Name, err))
			continue
		}
		plans = append(plans, sourcePlan{name: sc.Name, url: sc.Modbus.URL, transport: s.Transport(), requests: s.Plan()})
		_ = s.Close()
	}
	return plans, errors.Join(errs...)
}

// printPlans writes one block per source: each request on a line with its unit id,
// function, 0-based address range and the tags it decodes, in the order a poll issues them.
//
//	kiln1 (tcp://192.0.2.10:502): 2 requests per poll
//	  unit 1  fc3 holding registers  0..23    (24)  fuel_gas_flow fuel_gas_total ...
func printPlans(w io.Writer, plans []sourcePlan) {
	for _, p := range plans {
		fmt.Fprintf(w, "%s (%s): %d requests per poll\n", p.name, p.url, len(p.requests))
		for _, r := range p.requests {
			last := int(r.Address) + int(r.Quantity) - 1
			fmt.Fprintf(w, "  unit %-3d fc%d %-17s %5d..%-5d (%3d)  %s\n", r.UnitID, r.Function, r.FunctionName(),
				r.Address, last, r.Quantity, strings.Join(r.Tags, " "))
		}
	}
}
