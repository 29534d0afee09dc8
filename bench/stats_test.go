package bench

import (
	"math"
	"slices"
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	cases := []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{5, 5, 1, 9, 7}, 5},
	}
	for _, c := range cases {
		in := slices.Clone(c.in)
		if got := Median(c.in); got != c.want {
			t.Errorf("Median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("Median modified its input: %v", c.in)
		}
	}
	if !math.IsNaN(Median(nil)) {
		t.Error("Median(nil) is not NaN")
	}
}

func TestPercentile(t *testing.T) {
	xs := make([]float64, 200)
	for i := range xs {
		xs[i] = float64(200 - i) // 200 .. 1, unsorted on purpose
	}
	for _, c := range []struct{ p, want float64 }{{50, 100}, {99, 198}, {100, 200}, {0.1, 1}} {
		if got := Percentile(xs, c.p); got != c.want {
			t.Errorf("Percentile(1..200, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile([]float64{7}, 99); got != 7 {
		t.Errorf("Percentile of one value = %v, want 7", got)
	}
	if got := Percentile([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99); got != 10 {
		t.Errorf("p99 of 10 values = %v, want the largest", got)
	}
	if !math.IsNaN(Percentile(nil, 50)) {
		t.Error("Percentile(nil) is not NaN")
	}
}

func TestOrder(t *testing.T) {
	want := [][]int{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}, {0, 1, 2}}
	first := map[int]int{}
	for r, w := range want {
		got := Order(r, 3)
		if !slices.Equal(got, w) {
			t.Errorf("Order(%d, 3) = %v, want %v", r, got, w)
		}
		first[got[0]]++
	}
	if first[0] != 2 || first[1] != 1 || first[2] != 1 {
		t.Errorf("first sides over 4 rounds = %v", first)
	}
	if got := Order(1, 2); !slices.Equal(got, []int{1, 0}) {
		t.Errorf("Order(1, 2) = %v: two sides must swap", got)
	}
}

func TestRatiosAndSeconds(t *testing.T) {
	got := Ratios([]float64{2, 3, 9}, []float64{1, 3})
	if !slices.Equal(got, []float64{2, 1}) {
		t.Errorf("Ratios = %v", got)
	}
	s := Seconds([]time.Duration{1500 * time.Millisecond})
	if s[0] != 1.5 {
		t.Errorf("Seconds = %v", s)
	}
}
