// SPDX-License-Identifier: BSD-2-Clause

package main

import (
	"math"
	"testing"
)

// Buckets computed by chmbench's own bench_histogram_index (bench/chmbench.h) for these values:
// the exact ones below 64, the first split powers of two and their boundaries, large values, and
// the top of the range.
var cBuckets = []struct {
	ps     uint64
	bucket uint
}{
	{0, 0}, {1, 1}, {2, 2}, {31, 31}, {32, 32}, {63, 63},
	{64, 64}, {65, 64}, {66, 65}, {127, 95}, {128, 96}, {129, 96},
	{1000, 190}, {1023, 191}, {1024, 192}, {1055, 192}, {1056, 193},
	{20000, 327}, {999999, 509}, {1000000, 509}, {123456789, 730},
	{1<<40 + 12345, 1152}, {math.MaxInt64, 1887}, {math.MaxUint64, 1919},
}

func TestHistogramIndexMatchesC(t *testing.T) {
	for _, c := range cBuckets {
		if got := histogramIndex(c.ps); got != c.bucket {
			t.Errorf("histogramIndex(%d) = %d, C's bench_histogram_index says %d", c.ps, got, c.bucket)
		}
	}
	if histBuckets != 1920 || histogramIndex(math.MaxUint64) != histBuckets-1 {
		t.Errorf("%d buckets, the last %d: C has 1920", histBuckets, histogramIndex(math.MaxUint64))
	}
}

// The text form is bench_histogram_write's (these lines are what C writes for the same values).
func TestHistogramTextMatchesC(t *testing.T) {
	var h histogram
	h.reset()
	if got := string(h.appendText(nil)); got != "0 18446744073709551615 0 0 0" {
		t.Errorf("empty histogram: %q", got)
	}
	for _, ps := range []uint64{1000, 20000, 123456789} {
		h.record(ps)
	}
	// C: "3 1000 123456789 123477789 15241579151190520 190:1 327:1 730:1" (%.17g); Go writes
	// the shortest form of the same doubles, which C's strtod reads back exactly
	if got := string(h.appendText(nil)); got != "3 1000 123456789 1.23477789e+08 1.524157915119052e+16 190:1 327:1 730:1" {
		t.Errorf("three values: %q", got)
	}
	var merged histogram
	merged.reset()
	merged.merge(&h)
	merged.merge(&h)
	if merged.count != 6 || merged.min != 1000 || merged.max != 123456789 || merged.buckets[327] != 2 {
		t.Errorf("merge: %+v", merged)
	}
}
