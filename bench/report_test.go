package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func f(x float64) *float64 { return &x }

func sampleRuns() []Run {
	return []Run{
		{Workload: WorkloadE2E, Server: ServerPostfix, Round: 1, MsgsPerSec: 1000, CPUPer1000: f(2), PeakPSSBytes: 100, LatencyP50Ms: f(5), LatencyP99Ms: f(50)},
		{Workload: WorkloadE2E, Server: ServerGoqmailTCPServer, Round: 1, MsgsPerSec: 400, CPUPer1000: f(8)},
		{Workload: WorkloadE2E, Server: ServerGoqmailListener, Round: 1, MsgsPerSec: 500},
		{Workload: WorkloadE2E, Server: ServerPostfix, Round: 2, MsgsPerSec: 800, CPUPer1000: f(4), PeakPSSBytes: 300, LatencyP50Ms: f(7), LatencyP99Ms: f(70)},
		{Workload: WorkloadE2E, Server: ServerGoqmailTCPServer, Round: 2, MsgsPerSec: 600, CPUPer1000: f(6)},
		{Workload: WorkloadE2E, Server: ServerGoqmailListener, Round: 2, Error: "stalled"},
		{Workload: WorkloadE2E, Server: ServerPostfix, Round: 3, MsgsPerSec: 900, CPUPer1000: f(3), PeakPSSBytes: 200, LatencyP50Ms: f(6), LatencyP99Ms: f(60)},
		{Workload: WorkloadE2E, Server: ServerGoqmailTCPServer, Round: 3, MsgsPerSec: 450, CPUPer1000: f(7)},
		{Workload: WorkloadE2E, Server: ServerGoqmailListener, Round: 3, MsgsPerSec: 700},
		{Workload: WorkloadInject, Server: ServerPostfix, Round: 1, MsgsPerSec: 200},
		{Workload: WorkloadInject, Server: ServerGoqmail, Round: 1, MsgsPerSec: 300},
		{Workload: WorkloadRelay, Server: ServerPostfix, Round: 1, Error: "smtp-sink: refused"},
		{Workload: WorkloadRelay, Server: ServerGoqmailTCPServer, Round: 1, MsgsPerSec: 10},
	}
}

func TestSummarize(t *testing.T) {
	sums := Summarize(sampleRuns())
	type want struct {
		workload, server string
		runs, failed     int
		rate, cpu, p50   *float64
		pss              *float64
	}
	wants := []want{
		{WorkloadE2E, ServerPostfix, 3, 0, f(900), f(3), f(6), f(200)},
		{WorkloadE2E, ServerGoqmailTCPServer, 3, 0, f(450), f(7), nil, nil},
		// The failed round is left out of the median, not counted as 0.
		{WorkloadE2E, ServerGoqmailListener, 3, 1, f(600), nil, nil, nil},
		{WorkloadInject, ServerPostfix, 1, 0, f(200), nil, nil, nil},
		{WorkloadInject, ServerGoqmail, 1, 0, f(300), nil, nil, nil},
		{WorkloadRelay, ServerPostfix, 1, 1, nil, nil, nil, nil},
		{WorkloadRelay, ServerGoqmailTCPServer, 1, 0, f(10), nil, nil, nil},
	}
	if len(sums) != len(wants) {
		t.Fatalf("got %d summaries, want %d: %+v", len(sums), len(wants), sums)
	}
	eq := func(a, b *float64) bool {
		if a == nil || b == nil {
			return a == b
		}
		return math.Abs(*a-*b) < 1e-9
	}
	for i, w := range wants {
		s := sums[i]
		if s.Workload != w.workload || s.Server != w.server || s.Runs != w.runs || s.Failed != w.failed {
			t.Errorf("summary %d = %s/%s runs %d failed %d, want %s/%s %d %d", i, s.Workload, s.Server, s.Runs, s.Failed, w.workload, w.server, w.runs, w.failed)
		}
		if !eq(s.MsgsPerSec, w.rate) || !eq(s.CPUPer1000, w.cpu) || !eq(s.LatencyP50Ms, w.p50) || !eq(s.PeakPSSBytes, w.pss) {
			t.Errorf("summary %s/%s: rate %v cpu %v p50 %v pss %v", s.Workload, s.Server, s.MsgsPerSec, s.CPUPer1000, s.LatencyP50Ms, s.PeakPSSBytes)
		}
	}
}

func TestReportJSON(t *testing.T) {
	rep := &Report{Started: time.Date(2026, 11, 22, 5, 0, 0, 0, time.UTC), Quick: true, Runs: sampleRuns(),
		Machine: Machine{Cores: 2, Disk: Disk{Dir: "/tmp", FsyncRenamePerSec: map[string]float64{"1": 100, "8": 400}}}}
	rep.Finish()
	dir := t.TempDir()
	path, err := rep.WriteJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(path) != "20261122T050000Z-quick.json" {
		t.Errorf("report file %s", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Ratios         map[string]float64 `json:"ratios"`
		RatiosListener map[string]float64 `json:"ratios_listener"`
		Machine        struct {
			Cores int `json:"cores"`
			Disk  struct {
				Rate map[string]float64 `json:"fsync_create_rename_per_sec"`
			} `json:"disk"`
		} `json:"machine"`
		Summary []map[string]any `json:"summary"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("report is not valid JSON: %v\n%s", err, b)
	}
	// e2e: 450/900 (tcpserver layout); inject: 300/200; relay: Postfix
	// failed every round, so no ratio.
	wantRatios := map[string]float64{WorkloadE2E: 0.5, WorkloadInject: 1.5}
	if len(got.Ratios) != len(wantRatios) {
		t.Errorf("ratios = %v, want %v", got.Ratios, wantRatios)
	}
	for k, v := range wantRatios {
		if math.Abs(got.Ratios[k]-v) > 1e-9 {
			t.Errorf("ratios[%s] = %v, want %v", k, got.Ratios[k], v)
		}
	}
	if r := got.RatiosListener[WorkloadE2E]; math.Abs(r-600.0/900) > 1e-9 {
		t.Errorf("ratios_listener.e2e = %v", r)
	}
	if got.Machine.Cores != 2 || got.Machine.Disk.Rate["8"] != 400 {
		t.Errorf("machine = %+v", got.Machine)
	}
	// A metric nobody measured is absent, never NaN (invalid JSON).
	for _, s := range got.Summary {
		if s["server"] == ServerGoqmailListener {
			if _, ok := s["cpu_seconds_per_1000"]; ok {
				t.Errorf("unmeasured CPU present: %v", s)
			}
		}
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"goqmail-listener", "2/3", "e2e 0.50, inject 1.50", "1 writer 100, 8 writers 400", "FAILED relay/postfix round 1: smtp-sink: refused"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
