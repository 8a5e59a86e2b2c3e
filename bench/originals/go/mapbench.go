// SPDX-License-Identifier: BSD-2-Clause

// Command mapbench is the child process of chmbench's go:* peers: one fork of one mix trial on
// a sync.Map (go:syncmap), a map behind a sync.RWMutex (go:rwmutex) or a plain map (go:map, one
// thread). bench/originals/originals.c starts it with the trial as name=value arguments and
// reads the lines it prints (the protocol is described there).
//
// It draws exactly the operations chmbench's mix.c draws for the same seed (keys.go; --dump-keys
// compares them) and runs JMH's synchronized iterations as bench/runner.c does: every goroutine
// runs uncounted until all have started, measures itself until the common deadline, runs
// uncounted until all have stopped.
//
// sampleEvery=N (chmbench -bm sample, with loop=preset): in the measured part of every
// iteration each goroutine times every Nth operation alone (drawn first, then the map call
// between two reads of the clock: histogram.go) into a histogram of its own per kind; after
// each measured iteration they are merged and sent as "latency I KIND HISTOGRAM" lines, after a
// "timer OVERHEAD_NS GRANULARITY_NS go-monotonic" line once per run.
package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const batch = 64 // operations between checks of the shared flags, as runner.c

const (
	kindGet = iota
	kindPut
	kindRemove
	kindUpdate
)

// trial is the shared state: the map, mix's draw parameters, the iteration control.
type trial struct {
	m                               benchMap
	threads                         int
	keys, rangeSize                 uint64
	getBelow, putBelow, removeBelow uint64 // 31-bit thresholds
	keyMask                         uint64 // ^1 for ycsb: every key an even, present one
	preset, grow, countKinds        bool
	sampleEvery                     uint32 // -bm sample: every Nth operation timed; 0: off

	generation, started, stopped, finished atomic.Int32
	done, quit                             atomic.Bool
}

// worker is one goroutine's key stream and counters (padded: workers never share a line).
type worker struct {
	_                                  [128]byte
	rng                                uint64
	zipfKeys                           []uint32 // nil: uniform keys
	zipfPosition                       uint32
	nextNewKey                         uint64 // writes=grow: this goroutine's next fresh key
	inserts, removes, overwrites, sink uint64
	kinds                              [4]uint64
	measuredOps, measuredNs            int64
	countdown                          uint32        // -bm sample: operations to the next timed one
	hist                               *[4]histogram // -bm sample: this goroutine's, per kind
	_                                  [128]byte
}

func (t *trial) key(w *worker, r uint64) uint64 {
	if w.zipfKeys != nil {
		k := uint64(w.zipfKeys[w.zipfPosition&(zipfStreamLength-1)])
		w.zipfPosition++
		return k
	}
	return ((r >> 32) * t.rangeSize) >> 32
}

func (t *trial) runBatch(w *worker, count int) {
	switch {
	case t.preset:
		t.presetLoop(w, count)
	case t.grow:
		t.growLoop(w, count)
	default:
		t.churnLoop(w, count)
	}
}

// churnLoop is mix.c's churn loop: reads% gets, the rest puts or removes by bit 31.
func (t *trial) churnLoop(w *worker, count int) {
	m := t.m
	for i := 0; i < count; i++ {
		w.rng = xorshift64(w.rng)
		r := w.rng
		key := t.key(w, r)
		if r&0x7fffffff < t.getBelow {
			if v, ok := m.get(key); ok {
				w.sink += 1 + v
			}
		} else if r&(1<<31) != 0 {
			if m.put(key, key) {
				w.inserts++
			} else {
				w.overwrites++
			}
		} else if m.remove(key) {
			w.removes++
		}
	}
}

// growLoop is mix.c's grow loop: every write a put of a key never used before.
func (t *trial) growLoop(w *worker, count int) {
	m := t.m
	for i := 0; i < count; i++ {
		w.rng = xorshift64(w.rng)
		r := w.rng
		if r&0x7fffffff < t.getBelow {
			key := t.key(w, r)
			if v, ok := m.get(key); ok {
				w.sink += 1 + v
			}
		} else {
			if m.put(w.nextNewKey, w.nextNewKey) {
				w.inserts++
			} else {
				w.overwrites++
			}
			w.nextNewKey += uint64(t.threads)
		}
	}
}

// presetLoop is mix.c's preset loop (mix_draw + mix_execute): four kinds by thresholds.
func (t *trial) presetLoop(w *worker, count int) {
	m := t.m
	for i := 0; i < count; i++ {
		w.rng = xorshift64(w.rng)
		r := w.rng
		pick := r & 0x7fffffff
		key := t.key(w, r) & t.keyMask
		kind := kindUpdate
		switch {
		case pick < t.getBelow:
			kind = kindGet
		case pick < t.putBelow:
			kind = kindPut
		case pick < t.removeBelow:
			kind = kindRemove
		}
		if kind == kindPut && t.grow {
			key = w.nextNewKey
			w.nextNewKey += uint64(t.threads)
		}
		switch kind {
		case kindGet:
			if v, ok := m.get(key); ok {
				w.sink += 1 + v
			}
		case kindPut:
			if m.put(key, key) {
				w.inserts++
			} else {
				w.overwrites++
			}
		case kindRemove:
			if m.remove(key) {
				w.removes++
			}
		default: // an update writes a fresh value: the random draw
			if m.update(key, r) {
				w.inserts++
			}
		}
		w.kinds[kind]++
	}
}

// presetDraw is mix.c's mix_draw: the next operation's kind, key and random bits.
func (t *trial) presetDraw(w *worker) (kind int, key, r uint64) {
	w.rng = xorshift64(w.rng)
	r = w.rng
	pick := r & 0x7fffffff
	key = t.key(w, r) & t.keyMask
	kind = kindUpdate
	switch {
	case pick < t.getBelow:
		kind = kindGet
	case pick < t.putBelow:
		kind = kindPut
	case pick < t.removeBelow:
		kind = kindRemove
	}
	if kind == kindPut && t.grow {
		key = w.nextNewKey
		w.nextNewKey += uint64(t.threads)
	}
	return kind, key, r
}

// presetExecute is mix.c's mix_execute: the drawn operation on the map (what -bm sample times).
func (t *trial) presetExecute(w *worker, kind int, key, r uint64) {
	m := t.m
	switch kind {
	case kindGet:
		if v, ok := m.get(key); ok {
			w.sink += 1 + v
		}
	case kindPut:
		if m.put(key, key) {
			w.inserts++
		} else {
			w.overwrites++
		}
	case kindRemove:
		if m.remove(key) {
			w.removes++
		}
	default:
		if m.update(key, r) {
			w.inserts++
		}
	}
}

// presetSampled is mix.c's mix_run_batch_sampled: the preset loop, every sampleEvery-th
// operation timed alone (its draw outside the clock) into its kind's histogram, in ps.
func (t *trial) presetSampled(w *worker, count int) {
	for i := 0; i < count; i++ {
		kind, key, r := t.presetDraw(w)
		w.countdown--
		if w.countdown != 0 {
			t.presetExecute(w, kind, key, r)
		} else {
			w.countdown = t.sampleEvery
			start := clockNs()
			t.presetExecute(w, kind, key, r)
			stop := clockNs()
			ns := stop - start
			if ns < 0 {
				ns = 0
			}
			w.hist[kind].record(uint64(ns) * 1000)
		}
		w.kinds[kind]++
	}
}

// work is runner.c's worker_main for time-bound iterations.
func (t *trial) work(w *worker, wg *sync.WaitGroup) {
	defer wg.Done()
	n := int32(t.threads)
	seen := int32(0)
	for {
		g := t.generation.Load()
		for ; g == seen; g = t.generation.Load() {
			runtime.Gosched() // runner.c: sched_yield while waiting for the next iteration
		}
		seen = g
		if t.quit.Load() {
			return
		}
		t.started.Add(1)
		for t.started.Load() < n {
			t.runBatch(w, batch) // catch-up, uncounted
		}
		ops := int64(0)
		start := time.Now()
		if t.sampleEvery != 0 { // a loop of its own, as runner.c's: throughput's stays as it was
			for !t.done.Load() {
				t.presetSampled(w, batch)
				ops += batch
			}
		} else {
			for !t.done.Load() {
				t.runBatch(w, batch)
				ops += batch
			}
		}
		w.measuredNs = time.Since(start).Nanoseconds()
		w.measuredOps = ops
		t.stopped.Add(1)
		for t.stopped.Load() < n {
			t.runBatch(w, batch) // warm-down, uncounted
		}
		t.finished.Add(1)
	}
}

// iteration is runner.c's run_iteration: open, wait for all, sleep, raise done, wait, report.
func (t *trial) iteration(out *bufio.Writer, workers []*worker, phase string, index int, d time.Duration) {
	if t.sampleEvery != 0 { // published to the workers by the generation's increment
		for _, w := range workers {
			for k := range w.hist {
				w.hist[k].reset()
			}
		}
	}
	t.started.Store(0)
	t.stopped.Store(0)
	t.finished.Store(0)
	t.done.Store(false)
	t.generation.Add(1) // publishes the resets
	for t.started.Load() < int32(t.threads) {
		time.Sleep(20 * time.Microsecond)
	}
	time.Sleep(d)
	t.done.Store(true)
	for t.finished.Load() < int32(t.threads) {
		time.Sleep(20 * time.Microsecond)
	}
	fmt.Fprintf(out, "iteration %s %d", phase, index)
	for _, w := range workers {
		fmt.Fprintf(out, " %d %d", w.measuredOps, w.measuredNs)
	}
	fmt.Fprintln(out)
	if t.sampleEvery != 0 && phase == "measure" { // runner.c's collect_latency, then the records
		var all histogram
		for k := 0; k < 4; k++ {
			all.reset()
			for _, w := range workers {
				all.merge(&w.hist[k])
			}
			line := fmt.Appendf(nil, "latency %d %d ", index, k)
			out.Write(append(all.appendText(line), '\n'))
		}
	}
	out.Flush()
}

// workers seeds the goroutines' key streams as mix.c does: Zipf streams first, then one
// splitmix64 seeder.
func (t *trial) workers(seed uint64, zipf bool) []*worker {
	var streams []uint32
	if zipf {
		streams = zipfStreams(t.rangeSize, t.threads, seed)
	}
	seeder := splitmix64{seed}
	ws := make([]*worker, t.threads)
	for i := range ws {
		w := &worker{nextNewKey: t.rangeSize + uint64(i)}
		w.rng = seeder.nextNonzero()
		if zipf {
			w.zipfKeys = streams[i*zipfStreamLength : (i+1)*zipfStreamLength]
			w.zipfPosition = uint32(seeder.next())
		}
		if t.sampleEvery != 0 {
			w.countdown = t.sampleEvery
			w.hist = new([4]histogram)
		}
		ws[i] = w
	}
	return ws
}

// prefill is mix_setup's: the even keys of the range, checked, then each read once.
func (t *trial) prefill() (uint64, error) {
	prefilled := uint64(0)
	for k := uint64(0); k < t.rangeSize; k += 2 {
		if t.m.put(k, k) {
			prefilled++
		}
	}
	if prefilled != t.keys || uint64(t.m.size()) != t.keys {
		return 0, fmt.Errorf("prefill of %d keys left %d entries", t.keys, t.m.size())
	}
	for k := uint64(0); k < t.rangeSize; k += 2 {
		if v, ok := t.m.get(k); !ok || v != k {
			return 0, fmt.Errorf("prefilled key %d not found", k)
		}
	}
	return prefilled, nil
}

// sizeInRange: expected <= size <= expected + uncertain, in signed arithmetic. expected itself
// may be negative: each put that re-inserted a key unseen (counted in uncertain, not in inserts)
// lets a later remove of that key count one more remove than the inserts account for.
func sizeInRange(size, expected, uncertain int64) bool {
	return size >= expected && size <= expected+uncertain
}

// verify is mix.c's size invariant, size == prefill + inserts - removes. Where put cannot always
// tell an insert (syncMap at more than one goroutine), a put that overwrote or an update may
// have re-inserted a key removed meanwhile: size must then lie in [expected, expected + those].
func (t *trial) verify(prefilled uint64, workers []*worker) string {
	var inserts, removes, uncertain uint64
	for _, w := range workers {
		inserts += w.inserts
		removes += w.removes
		uncertain += w.overwrites + w.kinds[kindUpdate]
	}
	if os.Getenv("CHMBENCH_INJECT_SIZE_ERROR") != "" {
		inserts++
	}
	if t.m.exactCounts() || t.threads == 1 {
		uncertain = 0
	}
	size := uint64(t.m.size())
	expected := int64(prefilled) + int64(inserts) - int64(removes)
	if sizeInRange(int64(size), expected, int64(uncertain)) {
		if uncertain > 0 {
			return fmt.Sprintf("verify ok size %d in [%d, %d] (puts that overwrote, updates: "+
				"either may have re-inserted a key without Swap)", size, expected, expected+int64(uncertain))
		}
		return fmt.Sprintf("verify ok size %d", size)
	}
	if uncertain > 0 {
		return fmt.Sprintf("verify failed size invariant violated: size %d not in [prefill %d + "+
			"inserts %d - removes %d, that + %d overwrites and updates]", size, prefilled,
			inserts, removes, uncertain)
	}
	return fmt.Sprintf("verify failed size invariant violated: size %d != prefill %d + inserts %d - removes %d",
		size, prefilled, inserts, removes)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "mapbench: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	args := map[string]string{}
	for _, a := range os.Args[1:] {
		name, value, ok := strings.Cut(a, "=")
		if !ok || name == "" {
			fail("arguments are name=value, got %q", a)
		}
		args[name] = value
	}
	number := func(name string) uint64 {
		v, err := strconv.ParseUint(args[name], 10, 64)
		if err != nil {
			fail("%s= needs an integer, got %q", name, args[name])
		}
		return v
	}
	seconds := func(name string) time.Duration {
		v, err := strconv.ParseFloat(args[name], 64)
		if err != nil {
			fail("%s= needs a number of seconds, got %q", name, args[name])
		}
		return time.Duration(v * 1e9)
	}
	t := &trial{
		threads:     int(number("threads")),
		keys:        number("keys"),
		rangeSize:   number("range"),
		getBelow:    number("getBelow"),
		putBelow:    number("putBelow"),
		removeBelow: number("removeBelow"),
		keyMask:     ^uint64(0),
		preset:      args["loop"] == "preset",
		grow:        number("grow") != 0,
		countKinds:  number("countKinds") != 0,
	}
	if l := args["loop"]; l != "plain" && l != "preset" {
		fail("loop must be plain or preset, not %q", l)
	}
	if number("evenKeys") != 0 {
		t.keyMask = ^uint64(1)
	}
	if t.threads < 1 {
		fail("threads must be at least 1")
	}
	if _, ok := args["sampleEvery"]; ok {
		every := number("sampleEvery")
		if every < 1 || every > 1<<31 || !t.preset {
			fail("sampleEvery= needs an integer in [1, 2^31] and loop=preset, got %q", args["sampleEvery"])
		}
		t.sampleEvery = uint32(every)
	}
	if args["map"] == "map" && t.threads > 1 {
		fail("go:map is Go's plain map, not safe for concurrent use: one thread only")
	}
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	workers := t.workers(number("seed"), number("zipf") != 0)
	if dump, ok := args["dumpKeys"]; ok && dump != "0" {
		rec := &recorder{}
		t.m = rec
		n := number("dumpKeys")
		for i := 0; i < t.threads && i < 2; i++ {
			rec.thread = i
			for j := uint64(0); j < n; j++ {
				t.runBatch(workers[i], 1)
			}
		}
		out.WriteString(rec.out.String())
		return
	}
	m, err := newMap(args["map"], int(t.keys))
	if err != nil {
		fail("%v", err)
	}
	t.m = m
	prefilled, err := t.prefill()
	if err != nil {
		fail("%v", err)
	}
	fmt.Fprintf(out, "prefilled %d\n", prefilled)
	if t.sampleEvery != 0 {
		overhead, granularity := calibrateClock()
		fmt.Fprintf(out, "timer %d %d %s\n", overhead, granularity, clockName)
	}
	out.Flush()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go t.work(w, &wg)
	}
	for i := 0; i < int(number("warmupIterations")); i++ {
		t.iteration(out, workers, "warmup", i, seconds("warmupSeconds"))
	}
	for i := 0; i < int(number("iterations")); i++ {
		t.iteration(out, workers, "measure", i, seconds("seconds"))
	}
	t.quit.Store(true)
	t.generation.Add(1)
	wg.Wait()
	if t.countKinds {
		var k [4]uint64
		for _, w := range workers {
			for i := range k {
				k[i] += w.kinds[i]
			}
		}
		fmt.Fprintf(out, "kinds %d %d %d %d\n", k[0], k[1], k[2], k[3])
	}
	fmt.Fprintln(out, t.verify(prefilled, workers))
}
