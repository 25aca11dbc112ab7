package buffer

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Block values of at least nestedMin bytes are stored in a bucket of their own, under the
// block's key, holding the value under nestedKey (FORMAT.md, version 2). bbolt keeps
// values inline in their leaf, and copy-on-write rewrites the whole leaf a tick appends to,
// with the large values of the previous ticks still in it (a leaf splits only above four
// keys): every block was written to disk three to five times. A bucket's root page is
// written once; the leaf of the stream bucket then holds 8-byte keys and bucket headers
// only. Smaller values stay inline, where they share a page.
var nestedMin = 4096 // a variable for tests

var nestedKey = []byte{'v'}

// putBlock stores the block value v under key.
func putBlock(b *bolt.Bucket, key, v []byte) error {
	if len(v) < nestedMin {
		return b.Put(key, v)
	}
	nb, err := b.CreateBucket(key)
	if err != nil {
		return err
	}
	nb.FillPercent = 1 // one value, never appended to
	return nb.Put(nestedKey, v)
}

// blockValue resolves a cursor's (key, value) pair of a stream bucket: v itself, or the
// value inside the nested bucket when v is nil. It returns nil when neither holds one.
func blockValue(b *bolt.Bucket, k, v []byte) []byte {
	if v != nil || k == nil {
		return v
	}
	if nb := b.Bucket(k); nb != nil {
		return nb.Get(nestedKey)
	}
	return nil
}

// getBlock returns the block value stored under key, or nil.
func getBlock(b *bolt.Bucket, key []byte) []byte {
	return blockValue(b, key, b.Get(key))
}

// deleteBlock removes the block stored under key, inline or nested.
func deleteBlock(b *bolt.Bucket, key []byte) error {
	if b.Get(key) == nil && b.Bucket(key) != nil {
		if err := b.DeleteBucket(key); err != nil {
			return fmt.Errorf("delete nested block: %w", err)
		}
		return nil
	}
	return b.Delete(key)
}
