// SPDX-License-Identifier: BSD-2-Clause

package main

import (
	"math"
	"math/bits"
	"sort"
	"strconv"
	"time"
)

// -bm sample: chmbench's latency histogram (bench/histogram.c, the layout in bench/chmbench.h),
// ported exactly, and the clock of the timed operations.

const (
	histSubBits = 5                                 // BENCH_HIST_SUB_BITS
	histBuckets = (65 - histSubBits) << histSubBits // BENCH_HIST_BUCKETS: 1920
	clockName   = "go-monotonic"                    // the sampleTimer clock chmbench reports
	timerPairs  = 1001                              // timer.c's OVERHEAD_PAIRS
)

// histogram is bench_histogram: log-linear, values in picoseconds, below 64 a bucket each,
// every power of two above split into 32 buckets; count, min, max, sum and sum of squares exact.
type histogram struct {
	count, min, max uint64 // min is MaxUint64 while empty
	sum, sumSquares float64
	buckets         [histBuckets]uint64
}

// histogramIndex is bench_histogram_index, bit for bit.
func histogramIndex(ps uint64) uint {
	msb := uint(63 - bits.LeadingZeros64(ps|1))
	shift := uint(0)
	if msb > histSubBits {
		shift = msb - histSubBits
	}
	return shift<<histSubBits + uint(ps>>shift)
}

func (h *histogram) reset() {
	*h = histogram{min: math.MaxUint64}
}

// record is bench_histogram_record.
func (h *histogram) record(ps uint64) {
	h.buckets[histogramIndex(ps)]++
	h.count++
	h.sum += float64(ps)
	h.sumSquares += float64(ps) * float64(ps)
	if ps < h.min {
		h.min = ps
	}
	if ps > h.max {
		h.max = ps
	}
}

// merge is bench_histogram_merge.
func (h *histogram) merge(from *histogram) {
	if from.count == 0 {
		return
	}
	h.count += from.count
	h.sum += from.sum
	h.sumSquares += from.sumSquares
	if from.min < h.min {
		h.min = from.min
	}
	if from.max > h.max {
		h.max = from.max
	}
	for i, n := range from.buckets {
		h.buckets[i] += n
	}
}

// appendText is bench_histogram_write: "COUNT MIN MAX SUM SUM_SQUARES INDEX:N ..." (the
// non-empty buckets); the sums in the shortest form that reads back as the same double.
func (h *histogram) appendText(b []byte) []byte {
	b = strconv.AppendUint(b, h.count, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, h.min, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, h.max, 10)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, h.sum, 'g', -1, 64)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, h.sumSquares, 'g', -1, 64)
	for i, n := range h.buckets {
		if n != 0 {
			b = append(b, ' ')
			b = strconv.AppendUint(b, uint64(i), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, n, 10)
		}
	}
	return b
}

// clockBase: the clock of the timed operations is time.Since(clockBase), Go's monotonic clock
// (runtime nanotime, CLOCK_MONOTONIC through the vDSO on Linux) read once per call, in ns.
var clockBase = time.Now()

func clockNs() int64 { return int64(time.Since(clockBase)) }

func medianInt64(x []int64) int64 {
	sort.Slice(x, func(i, j int) bool { return x[i] < x[j] })
	return x[len(x)/2]
}

// calibrateClock is timer.c's bench_timer_calibrate for clockNs: the overhead of a start/stop
// pair (median of 1001 back-to-back pairs) and the granularity (median step when it moves), ns.
func calibrateClock() (overheadNs, granularityNs int64) {
	pairs := make([]int64, timerPairs)
	for i := range pairs {
		start := clockNs()
		stop := clockNs()
		pairs[i] = stop - start
	}
	overheadNs = medianInt64(pairs)
	for i := range pairs {
		first := clockNs()
		next := clockNs()
		for next == first {
			next = clockNs()
		}
		pairs[i] = next - first
	}
	return overheadNs, medianInt64(pairs)
}
