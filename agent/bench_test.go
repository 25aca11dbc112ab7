package agent

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mrv-agent/mrv-agent/buffer"
	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// BenchmarkSealCommit measures the pipeline's durable path: each iteration is one seal tick
// of 4 streams × 500 readings (float32 values with their raw words), sealed into signed
// blocks and committed in one fsync'd bbolt transaction. It reports readings/s.
func BenchmarkSealCommit(b *testing.B) {
	const streams, perStream = 4, 500
	key, err := seal.GenerateKey()
	require.NoError(b, err)
	store, err := buffer.Open(filepath.Join(b.TempDir(), "buffer.db"), buffer.Options{})
	require.NoError(b, err)
	defer store.Close()
	sealer := seal.NewSealer(key, store.Epoch())
	sts := make([]*seal.Stream, streams)
	for i := range sts {
		name := fmt.Sprintf("meter%d", i)
		sts[i] = &seal.Stream{Name: name, Origin: "bench/gw/" + name, LogID: [16]byte{byte(i)}}
	}
	recs := make([]reading.Record, perStream)
	for i := range recs {
		v, _ := reading.FromFloat32(123.456 + float32(i))
		recs[i] = reading.Reading{Tag: fmt.Sprintf("meter.v%03d", i%50), Value: v, HasValue: true, Unit: "kW",
			Time: 1_700_000_000_000_000_000 + int64(i)*1_000_000, TimeSource: reading.TimeGateway, Raw: []byte{0x42, 0xf6, 0xe9, 0x79}}.Record()
	}
	var bytes int64
	b.ReportAllocs()
	for b.Loop() {
		tick := buffer.Tick{Heads: make(map[string]buffer.Head, streams)}
		for _, st := range sts {
			env, err := sealer.Seal(st, recs)
			if err != nil {
				b.Fatal(err)
			}
			bytes += int64(len(env.Bytes))
			tick.Blocks = append(tick.Blocks, env)
			tick.Heads[st.Name] = buffer.Head{LogID: st.LogID, NextSeq: st.NextSeq, LastHash: st.LastHash}
		}
		if err := store.Commit(tick); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N) * streams * perStream
	b.ReportMetric(n/b.Elapsed().Seconds(), "readings/s")
	b.ReportMetric(float64(bytes)/n, "envelope-bytes/reading")
}
