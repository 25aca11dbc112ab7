package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// largeConfig is a plant's config of many Modbus and OPC UA tags, in the flow style of a
// generated file: modbus sources of tagsPerSource tags each, and one OPC UA source of as
// many.
func largeConfig(modbusSources, tagsPerSource int) []byte {
	var b strings.Builder
	b.WriteString("gateway: {site: bench, id: gw1}\nmqtt: {url: \"mqtt://127.0.0.1:1883\", client_id: gw1}\n" +
		"log: {level: warn, format: text}\nsources:\n")
	for i := range modbusSources {
		fmt.Fprintf(&b, "  - name: dev%02d\n    kind: modbus\n    interval: 200ms\n    timeout: 150ms\n"+
			"    modbus: {url: \"tcp://127.0.0.1:%d\"}\n    tags:\n", i, 40000+i)
		for j := range tagsPerSource {
			fmt.Fprintf(&b, "      - {id: u1v%03d, unit: kW, unit_id: 1, address: %d, type: float32}\n", j, 2*j)
		}
	}
	b.WriteString("  - name: opc\n    kind: opcua\n    interval: 1s\n" +
		"    opcua: {endpoint: \"opc.tcp://127.0.0.1:4840\", security: none, publishing_interval: 1s}\n    tags:\n")
	for j := range tagsPerSource {
		fmt.Fprintf(&b, "      - {id: v%05d, unit: kW, node: \"nsu=urn:mrv-agent:sim:kiln;s=V%05d\"}\n", j, j)
	}
	return []byte(b.String())
}

// BenchmarkParseLarge parses a config of 10,000 tags (800 KB, the size of the largest
// plant configs).
func BenchmarkParseLarge(b *testing.B) {
	data := largeConfig(39, 250)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data, "large.yaml"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestParseMemory bounds what Parse allocates for a config of 5,000 tags (360 KB), as a
// proxy for its peak live heap. The file is parsed once, into one yaml.Node tree, from
// which the Config is decoded and whose keys fill looks up by navigating it; the path
// index of every key is built only when there are problems to report. Parsing the file
// twice (the decoder's tree, then a second tree and the index of its every key) allocated
// 43.0 MB; parsing it once allocates 18.6 MB. (For the 10,000 tags of BenchmarkParseLarge:
// 87.1 MB and 37.4 MB; the peak live heap, 40 MB and 18 MB.)
func TestParseMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates some 10 MB")
	}
	data := largeConfig(19, 250)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, err := Parse(data, "large.yaml")
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	require.Len(t, c.Sources, 20)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("Parse of %d bytes allocated %.1f MB", len(data), float64(allocated)/1e6)
	require.Less(t, allocated, uint64(30e6), "Parse of a 5,000-tag file allocates more than 30 MB")
}

// TestHasMatchesIndex: navigating the tree finds exactly the paths that the index of every
// key holds, through aliases, merge keys (of a mapping, of a list, under an alias), keys
// that look like paths and duplicated keys.
func TestHasMatchesIndex(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	require.NoError(t, err)
	inputs := [][]byte{Example, largeConfig(2, 3),
		[]byte("base: &b {interval: 1s, modbus: {baud: 1}}\nl: &l [{register: input}, {type: bool}]\n" +
			"sources:\n  - {<<: *b, name: a, tags: [{<<: *l, id: t}, {<<: [{kind: state}, *b], id: u}]}\n" +
			"  - {name: b, tags: *l, tags[2].kind: x, \"<<\": {timeout: 2s}}\n  - *b\n" +
			"sources[3]: {}\nsources.x: 1\nsources: []\n\"\": {emissions: [{max_hold: 1s}]}\n"),
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		inputs = append(inputs, data)
	}
	for _, data := range inputs {
		root := parseRoot(data)
		if root == nil {
			continue
		}
		nav := newLocator(root, len(data))
		require.Nil(t, nav.byPath, "%s: indexed", data)
		idx := newLocator(root, len(data))
		idx.index()
		for _, k := range idx.keys {
			require.True(t, nav.has(k.path), "%s: %s", data, k.path)
			for _, p := range []string{k.path + ".x", k.path + "[0]", k.path + "[00]", k.path + "[1", k.path + "x", k.path + "."} {
				_, ok := idx.byPath[p]
				require.Equal(t, ok, nav.has(p), "%s: %s", data, p)
			}
		}
		require.Nil(t, nav.byPath, "%s: indexed", data)
	}
}

// TestHasAliasBudget: when walking the tree would exceed its budget, has answers from the
// index, cut where the walk stopped.
func TestHasAliasBudget(t *testing.T) {
	lines := []string{"a0: &a0 {interval: 1s, kind: modbus}"} // and a9 is a0 10^9 times
	for i := 1; i < 10; i++ {
		refs := slices.Repeat([]string{fmt.Sprintf("*a%d", i-1)}, 10)
		lines = append(lines, fmt.Sprintf("a%d: &a%d [%s]", i, i, strings.Join(refs, ", ")))
	}
	lines = append(lines, "sources: [{<<: *a0, name: x}]")
	data := []byte(strings.Join(lines, "\n") + "\n")
	l := newLocator(parseRoot(data), len(data))
	require.NotNil(t, l.byPath, "not indexed")
	require.False(t, l.has("sources[0].interval"), "the walk reached sources")
	require.True(t, l.has("a9"))
}

// TestDuplicateFieldAtTop: an unknown or repeated top-level key is reported as yaml/v3
// reports it for a Config.
func TestDuplicateFieldAtTop(t *testing.T) {
	_, err := Parse([]byte("&k gateway: {site: a, id: b}\n*k : {site: c, id: d}\n"), "x.yaml")
	require.ErrorContains(t, err, "x.yaml:2: field gateway already set in type config.Config")
	_, err = Parse([]byte("<<: {gateway: {site: a, id: b}, gatewy: 1}\n"), "x.yaml")
	require.ErrorContains(t, err, "x.yaml:1: gatewy: unknown key")
}
