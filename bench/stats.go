// Package bench measures goqmail against Postfix on the same machine:
// the workloads of `make bench` (docs/performance.md), the accounting of
// the servers' CPU and memory, and the report.
package bench

import (
	"math"
	"slices"
	"time"
)

// Median is the middle value of xs (the mean of the two middle values for
// an even count); NaN when xs is empty. xs is not modified.
func Median(xs []float64) float64 {
	return Percentile(xs, 50)
}

// Percentile is the p-th percentile of xs (0 <= p <= 100) by linear
// interpolation between closest ranks, the definition numpy uses by
// default; NaN when xs is empty. xs is not modified.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || math.IsNaN(p) {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	p = math.Max(0, math.Min(100, p))
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	return s[lo] + (s[hi]-s[lo])*(rank-float64(lo))
}

// DurationsMillis converts latencies to milliseconds for the report.
func DurationsMillis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Rate is n events in d, per second; 0 for a zero or negative duration.
func Rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}
