// SPDX-License-Identifier: BSD-2-Clause

package main

import "testing"

// The case a CI run met: go:syncmap, 2 goroutines, 200 keys, the exchange preset. Puts that
// re-inserted keys unseen (LoadOrStore then Store around a racing LoadAndDelete) let the removes
// outnumber prefill + inserts, so expected is negative (200 + 301153 - 301373 = -20), and
// unsigned arithmetic wrapped it to 2^64 - 20 and failed a size of 205.
func TestSizeInRangeNegativeExpected(t *testing.T) {
	if !sizeInRange(205, 200+301153-301373, 452416) {
		t.Fatal("size 205 in [-20, 452396] reported out of range")
	}
}

func TestSizeInRangeBounds(t *testing.T) {
	cases := []struct {
		size, expected, uncertain int64
		want                      bool
	}{
		{100, 100, 0, true},  // exact counts: equal
		{101, 100, 0, false}, // exact counts: one too many
		{99, 100, 0, false},  // exact counts: one too few
		{110, 100, 10, true}, // upper bound included
		{111, 100, 10, false},
		{99, 100, 10, false}, // below expected: a lost insert, never explained by re-inserts
		{0, -5, 3, false},    // negative expected, but size beyond expected + uncertain
		{0, -5, 5, true},
	}
	for _, c := range cases {
		if got := sizeInRange(c.size, c.expected, c.uncertain); got != c.want {
			t.Errorf("sizeInRange(%d, %d, %d) = %v, want %v", c.size, c.expected, c.uncertain, got, c.want)
		}
	}
}
