// Package bench measures ansible-worker against raw ansible-playbook and
// ansible-runner: per-playbook wall and CPU time, dispatch latency,
// throughput and memory. cmd/ansible-worker-bench prints its table.
package bench

import (
	"math"
	"slices"
	"time"
)

// Median returns the median of xs (the mean of the two middle values when
// len(xs) is even), or NaN for none. xs is not modified.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Percentile returns the p-th percentile (0 < p <= 100) of xs by the
// nearest-rank method: the smallest value that at least p% of xs do not
// exceed. Nearest rank never invents a value that was not measured, which
// matters for a tail figure such as p99. It returns NaN for none.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = max(1, min(rank, len(s)))
	return s[rank-1]
}

// Order returns the order in which the n sides of a comparison run in
// round r: a rotation by r (A B C, B C A, C A B, ...), so that every side
// goes first, middle and last equally often and none profits from a cache
// the one before it warmed.
func Order(r, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = (r + i) % n
	}
	return out
}

// Ratios returns a[i]/b[i] for each round, the figures whose median the
// table reports: a per-round ratio cancels load that hits both sides of
// one round.
func Ratios(a, b []float64) []float64 {
	out := make([]float64, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		out = append(out, a[i]/b[i])
	}
	return out
}

// Seconds converts durations to seconds for the statistics.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}
