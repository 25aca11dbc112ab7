package verify

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/mrv-agent/mrv-agent/reading"
	"github.com/mrv-agent/mrv-agent/seal"
)

// BenchmarkVerify500 verifies a stream of blocks of 500 readings each (the default
// blocks.max_records), end to end: parse, signature, strict decode, chain, OnReading.
func BenchmarkVerify500(b *testing.B) {
	k, err := seal.GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	s := &testStream{t: &testing.T{}, sealer: seal.NewSealer(k, 1), st: seal.Stream{Origin: origin, LogID: [16]byte{7}}, topic: "mrv/v1/" + origin + "/blocks"}
	const blocks = 20
	envs := []reading.Envelope{s.seal(s.genesisRec())}
	for i := range blocks {
		envs = append(envs, s.seal(readingRecs(500, int64(i)*500)...))
	}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		var readings int
		v, err := New(Options{Keys: []ed25519.PublicKey{k.Public}, OnReading: func(ReadingOut) { readings++ }})
		if err != nil {
			b.Fatal(err)
		}
		for i, e := range envs {
			v.Add(t0.Add(time.Duration(i)*time.Millisecond), s.topic, e.Bytes)
		}
		if sum := v.Finish(); !sum.Clean() || readings != blocks*500 {
			b.Fatalf("not clean: %v, %d readings", sum.Findings, readings)
		}
		n++
	}
	b.ReportMetric(float64(n*blocks*500)/b.Elapsed().Seconds(), "readings/s")
}
