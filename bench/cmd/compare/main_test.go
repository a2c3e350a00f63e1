package main

import (
	"bytes"
	"math"
	"testing"
)

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios([]string{"1x1", "50x4", "idle2000"})
	if err != nil {
		t.Fatal(err)
	}
	want := []scenario{{name: "1x1", conns: 1, k: 1}, {name: "50x4", conns: 50, k: 4}, {name: "idle2000", idle: true, conns: 2000}}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("scenario %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"x", "0x1", "1x0", "idle", "idle0", "1x", "3y4", "idle99999999"} {
		if _, err := parseScenarios([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestMedianAndRotate(t *testing.T) {
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median odd = %v", m)
	}
	if m := median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Errorf("median even = %v", m)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing should be NaN")
	}
	if r := rotate([]int{1, 2, 3}, 4); r[0] != 2 || r[1] != 3 || r[2] != 1 {
		t.Errorf("rotate = %v", r)
	}
}

func TestPrintTables(t *testing.T) {
	rep := func(tp, p50, cpu float64) report {
		r := report{Completed: 10, Frames: 5, Throughput: tp}
		r.Latency = &latency{P50: p50, P99: 2 * p50}
		r.Server = &serverFigures{CPUPerRequest: cpu}
		return r
	}
	var results []result
	for round, f := range []float64{1, 2, 3} {
		results = append(results,
			result{Round: round, Scenario: "1x1", Server: "raw", parsed: rep(1000*f, 50, 10)},
			result{Round: round, Scenario: "1x1", Server: "centrifuge", parsed: rep(800*f, 60, 20)},
			result{Round: round, Scenario: "1x1", Server: "pkgroute", parsed: rep(900*f, 55, 15)})
	}
	results[2].parsed.Statuses = map[string]int64{"1": 1}
	var b bytes.Buffer
	specs := []serverSpec{knownServers["raw"], knownServers["centrifuge"], knownServers["pkgroute"]}
	printTables(&b, []scenario{{name: "1x1", conns: 1, k: 1}}, specs, results)
	out := b.String()
	for _, want := range []string{
		"| raw | 2000 | 50 | 100 | 10.00 | 2.00 | 1.00x | 1.00x | 1.00x | 1.25x | 0.50x |",
		"| pkgroute *(1) | 1800 | 55 | 110 | 15.00 | 2.00 | 0.90x | 1.10x | 1.10x | 1.12x | 0.75x |",
	} {
		if !bytes.Contains(b.Bytes(), []byte(want)) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}
