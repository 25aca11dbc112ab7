package sim

import (
	"fmt"
	"strings"
)

// TagsYAML renders points as the `tags:` list of an agent config source (flow style, one
// tag per line, each line prefixed by indent), so the demo, the tests and the benchmarks
// describe a simulator to the agent exactly as an OT team would in a config file.
func TagsYAML(points []Point, indent string) string {
	var b strings.Builder
	for _, p := range points {
		fmt.Fprintf(&b, "%s- {id: %s, unit: %q, kind: %s, register: %s, address: %d, type: %s, order: %s",
			indent, p.ID, p.Unit, p.Kind, p.Register, p.Address, p.Type, p.Order)
		if p.Scale != "" {
			fmt.Fprintf(&b, ", scale: %s", p.Scale)
		}
		if p.Kind == "counter" {
			fmt.Fprintf(&b, ", width: %d, max_rate: %s", p.Width, p.MaxRate)
		}
		b.WriteString("}\n")
	}
	return b.String()
}
