// SPDX-License-Identifier: BSD-2-Clause

package main

import (
	"fmt"
	"strings"
	"sync"
)

// benchMap is what mix does to a map.
type benchMap interface {
	get(key uint64) (uint64, bool)
	put(key, value uint64) bool // true: the key was new
	remove(key uint64) bool     // true: the key was present
	// update sets the value of a present key and inserts nothing when it is absent. true: it
	// inserted the key after all (a map without an atomic update may re-insert a key removed
	// in between), which counts as an insert.
	update(key, value uint64) bool
	size() int
	// exactCounts: whether put's answer is always right, so that the size invariant is exact
	// at any thread count (see syncMap.put).
	exactCounts() bool
}

// syncMap is go:syncmap, a sync.Map used as Go 1.19's API allows.
type syncMap struct{ m sync.Map }

func (s *syncMap) get(key uint64) (uint64, bool) {
	v, ok := s.m.Load(key)
	if !ok {
		return 0, false
	}
	return v.(uint64), true
}

// put needs to know whether the key was new, which Store does not say; Go 1.19 has no Swap
// (Go 1.20 added it for this). So: LoadOrStore, and Store when the key was there. A remove
// racing between the two makes the Store re-insert the key without this put knowing: the size
// invariant is then a range (mapbench.go's verify).
func (s *syncMap) put(key, value uint64) bool {
	k, v := any(key), any(value) // boxed once for both calls
	if _, loaded := s.m.LoadOrStore(k, v); !loaded {
		return true
	}
	s.m.Store(k, v)
	return false
}

func (s *syncMap) remove(key uint64) bool {
	_, loaded := s.m.LoadAndDelete(key)
	return loaded
}

// update: Go 1.19's sync.Map has no update-if-present (CompareAndSwap came in Go 1.20), so
// Load then put, as chmbench's bench_update does for a map without one.
func (s *syncMap) update(key, value uint64) bool {
	if _, ok := s.m.Load(key); ok {
		return s.put(key, value)
	}
	return false
}

func (s *syncMap) size() int {
	n := 0
	s.m.Range(func(_, _ any) bool { n++; return true })
	return n
}

func (s *syncMap) exactCounts() bool { return false }

// rwMutexMap is go:rwmutex: gets under the read lock, writes under the write lock.
type rwMutexMap struct {
	mu sync.RWMutex
	m  map[uint64]uint64
}

func (r *rwMutexMap) get(key uint64) (uint64, bool) {
	r.mu.RLock()
	v, ok := r.m[key]
	r.mu.RUnlock()
	return v, ok
}

func (r *rwMutexMap) put(key, value uint64) bool {
	r.mu.Lock()
	_, present := r.m[key]
	r.m[key] = value
	r.mu.Unlock()
	return !present
}

func (r *rwMutexMap) remove(key uint64) bool {
	r.mu.Lock()
	_, present := r.m[key]
	delete(r.m, key)
	r.mu.Unlock()
	return present
}

func (r *rwMutexMap) update(key, value uint64) bool {
	r.mu.Lock()
	if _, present := r.m[key]; present {
		r.m[key] = value
	}
	r.mu.Unlock()
	return false
}

func (r *rwMutexMap) size() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

func (r *rwMutexMap) exactCounts() bool { return true }

// plainMap is go:map: no lock, one thread only (concurrent writes are a fatal error in Go).
type plainMap map[uint64]uint64

func (p plainMap) get(key uint64) (uint64, bool) { v, ok := p[key]; return v, ok }

func (p plainMap) put(key, value uint64) bool {
	_, present := p[key]
	p[key] = value
	return !present
}

func (p plainMap) remove(key uint64) bool {
	_, present := p[key]
	delete(p, key)
	return present
}

func (p plainMap) update(key, value uint64) bool {
	if _, present := p[key]; present {
		p[key] = value
	}
	return false
}

func (p plainMap) size() int         { return len(p) }
func (p plainMap) exactCounts() bool { return true }

// recorder is the map of dumpKeys=N: it prints every call instead of storing anything.
type recorder struct {
	out    strings.Builder
	thread int
}

func (r *recorder) record(kind string, key uint64) {
	fmt.Fprintf(&r.out, "dump %d %s %d\n", r.thread, kind, key)
}

func (r *recorder) get(key uint64) (uint64, bool) { r.record("get", key); return 0, false }
func (r *recorder) put(key, value uint64) bool    { r.record("put", key); return true }
func (r *recorder) remove(key uint64) bool        { r.record("remove", key); return false }
func (r *recorder) update(key, value uint64) bool { r.record("update", key); return false }
func (r *recorder) size() int                     { return 0 }
func (r *recorder) exactCounts() bool             { return true }

// newMap makes the map called name, presized for capacity keys where Go allows it.
func newMap(name string, capacity int) (benchMap, error) {
	switch name {
	case "syncmap":
		return &syncMap{}, nil // sync.Map takes no size hint
	case "rwmutex":
		return &rwMutexMap{m: make(map[uint64]uint64, capacity)}, nil
	case "map":
		return plainMap(make(map[uint64]uint64, capacity)), nil
	}
	return nil, fmt.Errorf("map must be syncmap, rwmutex or map, not %q", name)
}
