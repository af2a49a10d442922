package bench

import (
	"math"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"median odd", []float64{3, 1, 2}, 50, 2},
		{"median even", []float64{4, 1, 3, 2}, 50, 2.5},
		{"single", []float64{7}, 99, 7},
		{"p0 is min", []float64{5, 9, 1}, 0, 1},
		{"p100 is max", []float64{5, 9, 1}, 100, 9},
		{"p99 interpolates", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 99, 10.9},
		{"p25 interpolates", []float64{10, 20, 30, 40, 50}, 25, 20},
		{"p90 of two", []float64{0, 10}, 90, 9},
		{"out of range clamps", []float64{1, 2}, 150, 2},
		{"duplicates", []float64{2, 2, 2, 2}, 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			got := Percentile(tt.xs, tt.p)
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tt.xs, tt.p, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.xs[i] {
					t.Fatalf("input modified: %v", tt.xs)
				}
			}
		})
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		n    int
		d    time.Duration
		want float64
	}{
		{5000, 10 * time.Second, 500},
		{1, 500 * time.Millisecond, 2},
		{10, 0, 0},
		{10, -time.Second, 0},
	}
	for _, tt := range tests {
		if got := Rate(tt.n, tt.d); got != tt.want {
			t.Errorf("Rate(%d, %v) = %v, want %v", tt.n, tt.d, got, tt.want)
		}
	}
	if got := DurationsMillis([]time.Duration{1500 * time.Microsecond, time.Second}); got[0] != 1.5 || got[1] != 1000 {
		t.Errorf("DurationsMillis = %v", got)
	}
}
