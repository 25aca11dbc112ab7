package verify

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mrv-agent/mrv-agent/reading"
)

// The state file (Options.StatePath) is a bbolt database of its own, never the agent's:
//
//	meta    "version" → 1
//	logs    origin 0x00 log_id → CBOR stateLog (next seq, last hash, key in force, open
//	        holes, declared ranges, recent block hashes, blocks waiting in the window)
//	keys    kid → raw Ed25519 public key (every key known: given, learned on first use or
//	        through a signed rotation)
//	gwkeys  {site}/{gateway} → CBOR array of the kids trusted for that gateway
//	tofu    {site}/{gateway} → the kid trusted on first use
const (
	stateVersion     = 1
	stateSaveEvery   = time.Second
	stateHistory     = 64 // recent block hashes per log kept in the file (duplicates)
	stateMaxWaiting  = 10000
	stateOpenTimeout = time.Second
)

var (
	bucketMeta   = []byte("meta")
	bucketLogs   = []byte("logs")
	bucketKeys   = []byte("keys")
	bucketGWKeys = []byte("gwkeys")
	bucketTOFU   = []byte("tofu")
)

type stateStore struct {
	db *bolt.DB
}

func (s *stateStore) close() error { return s.db.Close() }

type stateAccepted struct {
	First uint64 `cbor:"0,keyasint"`
	Last  uint64 `cbor:"1,keyasint"`
	Hash  []byte `cbor:"2,keyasint"`
}

type stateHole struct {
	First       uint64      `cbor:"0,keyasint"`
	Last        uint64      `cbor:"1,keyasint"`
	Uncovered   [][2]uint64 `cbor:"2,keyasint,omitempty"`
	AfterPrev   []byte      `cbor:"3,keyasint,omitempty"`
	DeclHash    []byte      `cbor:"4,keyasint,omitempty"`
	HashChecked bool        `cbor:"5,keyasint,omitempty"`
	Cursor      uint64      `cbor:"6,keyasint"`
	CursorHash  []byte      `cbor:"7,keyasint"`
	Kid         []byte      `cbor:"8,keyasint"`
	KidAfter    []byte      `cbor:"9,keyasint,omitempty"`
	Reqs        int         `cbor:"10,keyasint,omitempty"`
	SkipTo      *uint64     `cbor:"11,keyasint,omitempty"`
}

type stateDecl struct {
	First    uint64 `cbor:"0,keyasint"`
	Last     uint64 `cbor:"1,keyasint"`
	LastHash []byte `cbor:"2,keyasint,omitempty"`
}

type stateWait struct {
	Recv int64  `cbor:"0,keyasint"`
	Env  []byte `cbor:"1,keyasint"`
}

type stateLog struct {
	Origin     string          `cbor:"0,keyasint"`
	LogID      []byte          `cbor:"1,keyasint"`
	GW         string          `cbor:"2,keyasint"`
	Started    bool            `cbor:"3,keyasint,omitempty"`
	Next       uint64          `cbor:"4,keyasint"`
	LastHash   []byte          `cbor:"5,keyasint"`
	Kid        []byte          `cbor:"6,keyasint,omitempty"`
	LastTime   int64           `cbor:"7,keyasint"`
	HasTime    bool            `cbor:"8,keyasint,omitempty"`
	Superseded bool            `cbor:"9,keyasint,omitempty"`
	Hist       []stateAccepted `cbor:"10,keyasint,omitempty"`
	Holes      []stateHole     `cbor:"11,keyasint,omitempty"`
	AfterHole  int             `cbor:"12,keyasint,omitempty"` // index+1 into Holes
	Declared   []stateDecl     `cbor:"13,keyasint,omitempty"`
	Waiting    []stateWait     `cbor:"14,keyasint,omitempty"`
}

func logDBKey(origin string, id [16]byte) []byte {
	k := make([]byte, 0, len(origin)+17)
	k = append(k, origin...)
	k = append(k, 0)
	return append(k, id[:]...)
}

// openState opens (or creates) the state file and restores what it holds. Blocks that
// were waiting in reorder windows are handed to the verifier again.
func (v *Verifier) openState(path string) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: stateOpenTimeout})
	if err != nil {
		return fmt.Errorf("verify: state file %s: %w", path, err)
	}
	var waits []struct {
		origin string
		w      stateWait
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketLogs, bucketKeys, bucketGWKeys, bucketTOFU} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		if ver := meta.Get([]byte("version")); ver == nil {
			if err := meta.Put([]byte("version"), []byte{stateVersion}); err != nil {
				return err
			}
		} else if len(ver) != 1 || ver[0] != stateVersion {
			return fmt.Errorf("state format version %v, want %d", ver, stateVersion)
		}
		if err := tx.Bucket(bucketKeys).ForEach(func(k, val []byte) error {
			if len(k) != 32 || len(val) != 32 {
				return errors.New("bad key entry")
			}
			kid := [32]byte(k)
			if _, ok := v.keys[kid]; !ok {
				v.keys[kid] = append([]byte(nil), val...)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketGWKeys).ForEach(func(k, val []byte) error {
			var kids [][]byte
			if err := reading.Unmarshal(val, &kids); err != nil {
				return fmt.Errorf("gateway keys of %s: %w", k, err)
			}
			for _, kid := range kids {
				if len(kid) == 32 {
					v.trustForGateway(string(k), [32]byte(kid))
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketTOFU).ForEach(func(k, val []byte) error {
			if len(val) == 32 {
				v.tofu[string(k)] = [32]byte(val)
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketLogs).ForEach(func(k, val []byte) error {
			var sl stateLog
			if err := reading.Unmarshal(val, &sl); err != nil {
				return fmt.Errorf("log %q: %w", k, err)
			}
			l, err := v.restoreLog(&sl)
			if err != nil {
				return fmt.Errorf("log %q: %w", k, err)
			}
			for _, w := range sl.Waiting {
				waits = append(waits, struct {
					origin string
					w      stateWait
				}{l.origin, w})
			}
			return nil
		})
	})
	if err != nil {
		db.Close()
		return fmt.Errorf("verify: state file %s: %w", path, err)
	}
	v.state = &stateStore{db: db}
	v.keysDirty = false
	for _, w := range waits {
		recv := time.Unix(0, w.w.Recv)
		if recv.After(v.now) {
			v.now = recv
		}
		v.guard("", func() { v.add(recv, "mrv/v1/"+w.origin+"/blocks", w.w.Env) })
	}
	v.log.Info("verify: state restored", "file", path, "logs", len(v.logs))
	return nil
}

func hash32(b []byte) (h [32]byte, ok bool) {
	if len(b) != 32 {
		return h, false
	}
	return [32]byte(b), true
}

func (v *Verifier) restoreLog(sl *stateLog) (*logState, error) {
	if len(sl.LogID) != 16 || len(sl.LastHash) != 32 {
		return nil, errors.New("bad log_id or last hash")
	}
	if len(v.logs) >= v.opts.MaxLogs {
		return nil, fmt.Errorf("more than %d logs", v.opts.MaxLogs)
	}
	id := [16]byte(sl.LogID)
	l := &logState{origin: sl.Origin, gw: sl.GW, id: id, idHex: fmt.Sprintf("%x", id[:]),
		started: sl.Started, next: sl.Next, lastHash: [32]byte(sl.LastHash),
		lastTime: sl.LastTime, hasTime: sl.HasTime, superseded: sl.Superseded}
	l.kid, l.hasKid = hash32(sl.Kid)
	for _, a := range sl.Hist {
		h, ok := hash32(a.Hash)
		if !ok || a.First > a.Last {
			return nil, errors.New("bad history entry")
		}
		l.hist = append(l.hist, accepted{first: a.First, last: a.Last, hash: h})
	}
	for i, sh := range sl.Holes {
		h := &hole{first: sh.First, last: sh.Last, hashChecked: sh.HashChecked, cursor: sh.Cursor, reqs: sh.Reqs}
		for _, r := range sh.Uncovered {
			h.uncovered = append(h.uncovered, seqRange{r[0], r[1]})
		}
		h.afterPrev, h.haveAfter = hash32(sh.AfterPrev)
		h.declHash, h.haveDeclHash = hash32(sh.DeclHash)
		h.cursorHash, _ = hash32(sh.CursorHash)
		h.kid, _ = hash32(sh.Kid)
		h.kidAfter, _ = hash32(sh.KidAfter)
		if sh.SkipTo != nil {
			h.skipped, h.skipTo = true, *sh.SkipTo
		}
		l.holes = append(l.holes, h)
		if sl.AfterHole == i+1 {
			l.afterHole = h
		}
		// A hole still open is reported again by this run.
		if len(h.uncovered) > 0 {
			v.sum.GapsUndeclared++
			v.unresolved[l] = struct{}{}
		} else {
			v.sum.GapsDeclared++
		}
	}
	for _, d := range sl.Declared {
		dr := declaredRange{seqRange: seqRange{d.First, d.Last}}
		dr.lastHash, dr.hasHash = hash32(d.LastHash)
		l.declared = append(l.declared, dr)
	}
	v.logs[logKey{l.origin, id}] = l
	return l, nil
}

func (l *logState) snapshot() stateLog {
	sl := stateLog{Origin: l.origin, LogID: append([]byte(nil), l.id[:]...), GW: l.gw, Started: l.started, Next: l.next,
		LastHash: append([]byte(nil), l.lastHash[:]...), LastTime: l.lastTime, HasTime: l.hasTime, Superseded: l.superseded}
	if l.hasKid {
		sl.Kid = append([]byte(nil), l.kid[:]...)
	}
	for _, a := range l.hist[max(0, len(l.hist)-stateHistory):] {
		sl.Hist = append(sl.Hist, stateAccepted{First: a.first, Last: a.last, Hash: append([]byte(nil), a.hash[:]...)})
	}
	for _, h := range l.holes {
		final := len(h.uncovered) == 0 && (h.hashChecked || !h.haveDeclHash)
		if final && h != l.afterHole {
			continue // declared and checked: reported by the run that saw it
		}
		sh := stateHole{First: h.first, Last: h.last, HashChecked: h.hashChecked, Cursor: h.cursor,
			CursorHash: append([]byte(nil), h.cursorHash[:]...), Kid: append([]byte(nil), h.kid[:]...), Reqs: h.reqs}
		for _, r := range h.uncovered {
			sh.Uncovered = append(sh.Uncovered, [2]uint64{r.first, r.last})
		}
		if h.haveAfter {
			sh.AfterPrev = append([]byte(nil), h.afterPrev[:]...)
			sh.KidAfter = append([]byte(nil), h.kidAfter[:]...)
		}
		if h.skipped {
			sh.SkipTo = &h.skipTo
		}
		if h.haveDeclHash {
			sh.DeclHash = append([]byte(nil), h.declHash[:]...)
		}
		sl.Holes = append(sl.Holes, sh)
		if h == l.afterHole {
			sl.AfterHole = len(sl.Holes)
		}
	}
	for _, d := range l.declared {
		sd := stateDecl{First: d.first, Last: d.last}
		if d.hasHash {
			sd.LastHash = append([]byte(nil), d.lastHash[:]...)
		}
		sl.Declared = append(sl.Declared, sd)
	}
	for _, p := range l.waiting {
		if len(sl.Waiting) >= stateMaxWaiting {
			break
		}
		sl.Waiting = append(sl.Waiting, stateWait{Recv: p.recv.UnixNano(), Env: p.env})
	}
	return sl
}

// maybeSave saves the state when something changed and a second has passed (on the
// receive-time clock).
func (v *Verifier) maybeSave(now time.Time) {
	if v.state == nil || (len(v.dirty) == 0 && !v.keysDirty) {
		return
	}
	if !v.lastSave.IsZero() && now.Sub(v.lastSave) < stateSaveEvery && !now.Before(v.lastSave) {
		return
	}
	v.lastSave = now
	v.saveState()
}

// saveState writes the changed logs and, when they changed, the keys, in one transaction.
// A failure is logged and kept for Close; the state in memory stays dirty.
func (v *Verifier) saveState() {
	if v.state == nil || (len(v.dirty) == 0 && !v.keysDirty) {
		return
	}
	err := v.state.db.Update(func(tx *bolt.Tx) error {
		logs := tx.Bucket(bucketLogs)
		for l := range v.dirty {
			sl := l.snapshot()
			data, err := reading.Marshal(&sl)
			if err != nil {
				return err
			}
			if err := logs.Put(logDBKey(l.origin, l.id), data); err != nil {
				return err
			}
		}
		if !v.keysDirty {
			return nil
		}
		keys := tx.Bucket(bucketKeys)
		for kid, pub := range v.keys {
			if err := keys.Put(append([]byte(nil), kid[:]...), pub); err != nil {
				return err
			}
		}
		gwk := tx.Bucket(bucketGWKeys)
		for gw, m := range v.gwKeys {
			kids := make([][]byte, 0, len(m))
			for kid := range m {
				kids = append(kids, append([]byte(nil), kid[:]...))
			}
			data, err := reading.Marshal(kids)
			if err != nil {
				return err
			}
			if err := gwk.Put([]byte(gw), data); err != nil {
				return err
			}
		}
		tofu := tx.Bucket(bucketTOFU)
		for gw, kid := range v.tofu {
			if err := tofu.Put([]byte(gw), append([]byte(nil), kid[:]...)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		v.log.Error("verify: state not saved", "err", err)
		if v.stateErr == nil {
			v.stateErr = fmt.Errorf("verify: save state: %w", err)
		}
		return
	}
	clear(v.dirty)
	v.keysDirty = false
}
