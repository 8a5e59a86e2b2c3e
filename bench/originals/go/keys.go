// SPDX-License-Identifier: BSD-2-Clause

package main

import "math"

// The PRNGs and key streams of chmbench's mix.c (bench/chmbench.h), ported bit for bit.

const zipfStreamLength = 1 << 16 // keys per thread, as mix.c

func xorshift64(x uint64) uint64 {
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	return x
}

type splitmix64 struct{ state uint64 }

func (s *splitmix64) next() uint64 {
	s.state += 0x9e3779b97f4a7c15
	z := s.state
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// nextNonzero is bench_seed_rng: a nonzero xorshift state.
func (s *splitmix64) nextNonzero() uint64 {
	for {
		if x := s.next(); x != 0 {
			return x
		}
	}
}

// zipfStreams is mix.c's fill_zipf_streams: Zipf(0.99) ranks over [0, n) mapped through one
// random permutation, zipfStreamLength keys per thread.
func zipfStreams(n uint64, threads int, seed uint64) []uint32 {
	// a float64 variable, not an untyped constant: 1 - theta must round as it does in C
	theta := 0.99
	rng := splitmix64{seed ^ 0x2545f4914f6cdd1d}
	permutation := make([]uint32, n)
	for i := range permutation {
		permutation[i] = uint32(i)
	}
	for i := n - 1; i > 0; i-- { // Fisher-Yates
		j := rng.next() % (i + 1)
		permutation[i], permutation[j] = permutation[j], permutation[i]
	}
	zetan := 0.0
	for i := uint64(1); i <= n; i++ {
		zetan += math.Pow(float64(i), -theta)
	}
	zeta2 := 1 + math.Pow(0.5, theta)
	alpha := 1 / (1 - theta)
	eta := (1 - math.Pow(2.0/float64(n), 1-theta)) / (1 - zeta2/zetan)
	keys := make([]uint32, threads*zipfStreamLength)
	for i := range keys {
		u := float64(rng.next()>>11) * 0x1p-53
		uz := u * zetan
		var rank uint64
		switch {
		case uz < 1:
			rank = 0
		case uz < zeta2:
			rank = 1
		default:
			rank = uint64(float64(n) * math.Pow(eta*u-eta+1, alpha))
		}
		if rank >= n {
			rank = n - 1
		}
		keys[i] = permutation[rank]
	}
	return keys
}
