package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/scpgate/scpgate"
)

// Keys of the state bucket:
//
//	<serial>                 scpgate.ControllerState without its points
//	<serial>.door.<n>        scpgate.DoorState
//	<serial>.input.<n>       scpgate.InputState
//	<serial>.output.<n>      scpgate.OutputState
//
// A value is changed with compare-and-set on its revision and only by
// newer events (the rules of scpgate.ControllerState), so instances
// updating the same key concurrently or from redelivered events never move
// it back.

// ControllerKey returns the state bucket key of a controller.
func ControllerKey(serial string) string { return serial }

// PointKey returns the state bucket key of a door, input or output.
func PointKey(serial, pointType string, n uint16) string {
	return serial + "." + pointType + "." + strconv.Itoa(int(n))
}

// maxCASAttempts bounds the compare-and-set retries of one key.
const maxCASAttempts = 32

// maxCached bounds the revisions remembered; past it the cache restarts.
const maxCached = 200_000

// kvState updates the state bucket.
type kvState struct {
	kv      jetstream.KeyValue
	workers int

	mu    sync.Mutex // guards cache
	cache map[string]kvEntry
}

// kvEntry is the last value this process wrote or read for a key.
type kvEntry struct {
	rev   uint64
	value []byte
}

func newKVState(kv jetstream.KeyValue, workers int) *kvState {
	return &kvState{kv: kv, workers: workers, cache: map[string]kvEntry{}}
}

// keyUpdate is what one batch changes in one key.
type keyUpdate struct {
	key    string
	events []*scpgate.Event      // for a controller key
	points []scpgate.PointUpdate // for a point key
}

// apply merges events into the bucket, one key per worker at a time.
func (k *kvState) apply(ctx context.Context, events []scpgate.Event) error {
	byKey := map[string]*keyUpdate{}
	var order []*keyUpdate
	get := func(key string) *keyUpdate {
		u := byKey[key]
		if u == nil {
			u = &keyUpdate{key: key}
			byKey[key] = u
			order = append(order, u)
		}
		return u
	}
	for i := range events {
		ev := &events[i]
		u := get(ControllerKey(ev.Controller))
		u.events = append(u.events, ev)
		if p, ok := scpgate.PointUpdateOf(ev); ok {
			u := get(PointKey(ev.Controller, p.Type, p.Number))
			u.points = append(u.points, p)
		}
	}
	work := make(chan *keyUpdate)
	errs := make(chan error, len(order))
	var wg sync.WaitGroup
	for range min(k.workers, len(order)) {
		wg.Go(func() {
			for u := range work {
				if err := k.merge(ctx, u); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, u := range order {
		work <- u
	}
	close(work)
	wg.Wait()
	close(errs)
	return <-errs // nil when none failed
}

// merge applies u to its key with compare-and-set.
func (k *kvState) merge(ctx context.Context, u *keyUpdate) error {
	for attempt := 0; attempt < maxCASAttempts; attempt++ {
		cur, ok := k.cached(u.key)
		if !ok {
			e, err := k.kv.Get(ctx, u.key)
			switch {
			case errors.Is(err, jetstream.ErrKeyNotFound):
				cur = kvEntry{}
			case err != nil:
				return fmt.Errorf("get state %s: %w", u.key, err)
			default:
				cur = kvEntry{rev: e.Revision(), value: e.Value()}
			}
		}
		next, changed, err := u.applyTo(cur.value)
		if err != nil {
			return err
		}
		if !changed {
			k.remember(u.key, cur)
			return nil
		}
		var rev uint64
		if cur.rev == 0 {
			rev, err = k.kv.Create(ctx, u.key, next)
		} else {
			rev, err = k.kv.Update(ctx, u.key, next, cur.rev)
		}
		if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			k.forget(u.key) // someone else wrote it: read it again
			continue
		}
		if err != nil {
			k.forget(u.key)
			return fmt.Errorf("put state %s: %w", u.key, err)
		}
		k.remember(u.key, kvEntry{rev: rev, value: next})
		return nil
	}
	return fmt.Errorf("put state %s: still conflicting after %d attempts", u.key, maxCASAttempts)
}

// applyTo returns the value of u's key after u, from its current value
// (nil when absent), and whether it changed.
func (u *keyUpdate) applyTo(cur []byte) ([]byte, bool, error) {
	var v any
	changed := false
	decode := func(dst any) error {
		if len(cur) == 0 {
			return nil
		}
		if err := json.Unmarshal(cur, dst); err != nil {
			return fmt.Errorf("decode state %s: %w", u.key, err)
		}
		return nil
	}
	if len(u.events) > 0 {
		var c scpgate.ControllerState
		if err := decode(&c); err != nil {
			return nil, false, err
		}
		for _, ev := range u.events {
			changed = c.ApplyController(ev) || changed
		}
		v = &c
	} else {
		switch p0 := u.points[0]; p0.Type {
		case scpgate.PointDoor:
			d := scpgate.DoorState{Door: p0.Number}
			if err := decode(&d); err != nil {
				return nil, false, err
			}
			for _, p := range u.points {
				changed = d.Apply(p) || changed
			}
			v = &d
		case scpgate.PointInput:
			s := scpgate.InputState{Input: p0.Number}
			if err := decode(&s); err != nil {
				return nil, false, err
			}
			for _, p := range u.points {
				changed = s.Apply(p) || changed
			}
			v = &s
		default:
			s := scpgate.OutputState{Output: p0.Number}
			if err := decode(&s); err != nil {
				return nil, false, err
			}
			for _, p := range u.points {
				changed = s.Apply(p) || changed
			}
			v = &s
		}
	}
	if !changed {
		return cur, false, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false, fmt.Errorf("encode state %s: %w", u.key, err)
	}
	return b, true, nil
}

func (k *kvState) cached(key string) (kvEntry, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	e, ok := k.cache[key]
	return e, ok
}

func (k *kvState) remember(key string, e kvEntry) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.cache) >= maxCached {
		clear(k.cache)
	}
	k.cache[key] = e
}

func (k *kvState) forget(key string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.cache, key)
}
