package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Workload names, as they appear in the report and in its ratios object.
const (
	WorkloadE2E    = "e2e"    // SMTP in, Maildir delivery
	WorkloadRelay  = "relay"  // SMTP in, SMTP out to smtp-sink
	WorkloadInject = "inject" // sendmail calls, Maildir delivery
)

// Server names. The goqmail SMTP workloads run in both of qmail-smtpd's
// layouts; injection does not involve qmail-smtpd.
const (
	ServerPostfix          = "postfix"
	ServerGoqmailTCPServer = "goqmail-tcpserver" // tcpserver + qmail-smtpd per connection
	ServerGoqmailListener  = "goqmail-listener"  // qmail-smtpd --listen
	ServerGoqmail          = "goqmail"           // sendmail -> qmail-inject -> qmail-queue
)

// Run is one measurement: one workload against one server in one round.
type Run struct {
	Workload string `json:"workload"`
	Server   string `json:"server"`
	Round    int    `json:"round"`
	Messages int    `json:"messages"`
	// Seconds from the first message sent to the last one delivered.
	Seconds    float64 `json:"seconds"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	// CPUSeconds is the CPU time (user+system) of every process of the
	// server during the workload, from its cgroup; nil when unavailable.
	CPUSeconds *float64 `json:"cpu_seconds,omitempty"`
	CPUPer1000 *float64 `json:"cpu_seconds_per_1000,omitempty"`
	// PeakPSSBytes is the largest total memory of the server's
	// processes seen while sampling every 100 ms, as the sum of their
	// proportional set sizes (shared pages counted once);
	// MaxProcessRSSBytes the largest peak RSS (VmHWM) of any one of them.
	PeakPSSBytes       int64    `json:"peak_pss_bytes,omitempty"`
	MaxProcessRSSBytes int64    `json:"max_process_rss_bytes,omitempty"`
	LatencyP50Ms       *float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms       *float64 `json:"latency_p99_ms,omitempty"`
	LatencySamples     int      `json:"latency_samples,omitempty"`
	Error              string   `json:"error,omitempty"`
}

// OK reports whether the run completed and counts in the medians.
func (r Run) OK() bool { return r.Error == "" }

// Summary is the median over the rounds of one workload and server.
type Summary struct {
	Workload           string   `json:"workload"`
	Server             string   `json:"server"`
	Runs               int      `json:"runs"`
	Failed             int      `json:"failed"`
	MsgsPerSec         *float64 `json:"msgs_per_sec,omitempty"`
	CPUPer1000         *float64 `json:"cpu_seconds_per_1000,omitempty"`
	PeakPSSBytes       *float64 `json:"peak_pss_bytes,omitempty"`
	MaxProcessRSSBytes *float64 `json:"max_process_rss_bytes,omitempty"`
	LatencyP50Ms       *float64 `json:"latency_p50_ms,omitempty"`
	LatencyP99Ms       *float64 `json:"latency_p99_ms,omitempty"`
}

// Machine describes where the numbers were taken.
type Machine struct {
	Cores     int    `json:"cores"`
	CPUModel  string `json:"cpu_model,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
	GoVersion string `json:"go_version,omitempty"`
	Postfix   string `json:"postfix_version,omitempty"`
	// Disk: the device and file system holding the benchmark's files.
	Disk Disk `json:"disk"`
	// Load is /proc/loadavg when the benchmark started: other work on
	// the machine makes every number here smaller.
	Load string `json:"loadavg_at_start,omitempty"`
}

// Disk is the storage under the benchmark's temporary directory.
type Disk struct {
	Dir          string `json:"dir"`
	Device       string `json:"device,omitempty"`
	FSType       string `json:"fstype,omitempty"`
	MountOptions string `json:"mount_options,omitempty"`
	Model        string `json:"model,omitempty"`
	Rotational   *bool  `json:"rotational,omitempty"`
	// FsyncRenamePerSec is the disk's limit for qmail's and Postfix's
	// pattern: write a file, fsync it, rename it, fsync the directory;
	// keyed by the number of parallel writers.
	FsyncRenamePerSec map[string]float64 `json:"fsync_create_rename_per_sec,omitempty"`
}

// Report is the whole result of one `make bench`, written as JSON under
// bench/results/.
type Report struct {
	Started     time.Time `json:"started"`
	Command     string    `json:"command"`
	Quick       bool      `json:"quick"`
	Messages    int       `json:"messages"`
	MessageSize int       `json:"message_size"`
	Sessions    int       `json:"smtp_sessions"`
	Injectors   int       `json:"parallel_sendmail"`
	Rounds      int       `json:"rounds"`
	Machine     Machine   `json:"machine"`
	// Fsync records what was checked to make sure both servers fsync.
	Fsync     []string  `json:"fsync_checks"`
	Runs      []Run     `json:"runs"`
	Summaries []Summary `json:"summary"`
	// Ratios is goqmail's median messages per second over Postfix's, per
	// workload; goqmail's SMTP workloads in the classic layout (tcpserver
	// and one qmail-smtpd per connection).
	Ratios map[string]float64 `json:"ratios"`
	// RatiosListener is the same with qmail-smtpd's standalone listener.
	RatiosListener map[string]float64 `json:"ratios_listener,omitempty"`
	Notes          []string           `json:"notes,omitempty"`
}

// ptr gives nil for NaN, so that a missing metric is absent from the JSON
// rather than an invalid number.
func ptr(x float64) *float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// Summarize computes the medians of the successful runs per workload and
// server, in the order in which the pairs first appear in runs.
func Summarize(runs []Run) []Summary {
	type key struct{ w, s string }
	var order []key
	groups := map[key][]Run{}
	for _, r := range runs {
		k := key{r.Workload, r.Server}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []Summary
	for _, k := range order {
		s := Summary{Workload: k.w, Server: k.s}
		var rate, cpu, rss, maxrss, p50, p99 []float64
		for _, r := range groups[k] {
			s.Runs++
			if !r.OK() {
				s.Failed++
				continue
			}
			rate = append(rate, r.MsgsPerSec)
			if r.CPUPer1000 != nil {
				cpu = append(cpu, *r.CPUPer1000)
			}
			if r.PeakPSSBytes > 0 {
				rss = append(rss, float64(r.PeakPSSBytes))
			}
			if r.MaxProcessRSSBytes > 0 {
				maxrss = append(maxrss, float64(r.MaxProcessRSSBytes))
			}
			if r.LatencyP50Ms != nil {
				p50 = append(p50, *r.LatencyP50Ms)
			}
			if r.LatencyP99Ms != nil {
				p99 = append(p99, *r.LatencyP99Ms)
			}
		}
		s.MsgsPerSec = ptr(Median(rate))
		s.CPUPer1000 = ptr(Median(cpu))
		s.PeakPSSBytes = ptr(Median(rss))
		s.MaxProcessRSSBytes = ptr(Median(maxrss))
		s.LatencyP50Ms = ptr(Median(p50))
		s.LatencyP99Ms = ptr(Median(p99))
		out = append(out, s)
	}
	return out
}

// Ratios divides goqmail's median rate by Postfix's per workload, taking
// goqmail's numbers from the server named for each workload. A workload
// where either side has no successful run has no ratio.
func Ratios(sums []Summary, goqmailServer map[string]string) map[string]float64 {
	rate := map[[2]string]float64{}
	for _, s := range sums {
		if s.MsgsPerSec != nil {
			rate[[2]string{s.Workload, s.Server}] = *s.MsgsPerSec
		}
	}
	out := map[string]float64{}
	for w, server := range goqmailServer {
		g, okG := rate[[2]string{w, server}]
		p, okP := rate[[2]string{w, ServerPostfix}]
		if okG && okP && p > 0 {
			out[w] = g / p
		}
	}
	return out
}

// Finish fills in the summaries and ratios from the runs.
func (r *Report) Finish() {
	r.Summaries = Summarize(r.Runs)
	r.Ratios = Ratios(r.Summaries, map[string]string{
		WorkloadE2E: ServerGoqmailTCPServer, WorkloadRelay: ServerGoqmailTCPServer, WorkloadInject: ServerGoqmail,
	})
	r.RatiosListener = Ratios(r.Summaries, map[string]string{
		WorkloadE2E: ServerGoqmailListener, WorkloadRelay: ServerGoqmailListener,
	})
}

// WriteJSON saves the report as dir/<start time>.json and returns the path.
func (r *Report) WriteJSON(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results directory: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encoding report: %w", err)
	}
	name := r.Started.UTC().Format("20060102T150405Z")
	if r.Quick {
		name += "-quick"
	}
	path := filepath.Join(dir, name+".json")
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("writing report: %w", err)
	}
	return path, nil
}

func fmtOpt(x *float64, format string) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf(format, *x)
}

func fmtMiB(x *float64) string {
	if x == nil {
		return "-"
	}
	return fmt.Sprintf("%.1f", *x/(1<<20))
}

// WriteTable prints the summaries, the ratios and the disk's limit.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\tserver\truns ok\tmsg/s\tCPU s/1000\ttotal PSS MiB\tmax proc RSS MiB\tp50 ms\tp99 ms\t")
	for _, s := range r.Summaries {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			s.Workload, s.Server, s.Runs-s.Failed, s.Runs,
			fmtOpt(s.MsgsPerSec, "%.0f"), fmtOpt(s.CPUPer1000, "%.2f"),
			fmtMiB(s.PeakPSSBytes), fmtMiB(s.MaxProcessRSSBytes),
			fmtOpt(s.LatencyP50Ms, "%.1f"), fmtOpt(s.LatencyP99Ms, "%.1f"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ratioLine := func(label string, m map[string]float64) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s %.2f", k, m[k]))
		}
		if len(parts) == 0 {
			parts = []string{"none (a side has no successful run)"}
		}
		fmt.Fprintf(w, "%s: %s\n", label, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w)
	ratioLine("goqmail/Postfix msg/s (tcpserver layout; inject: sendmail)", r.Ratios)
	ratioLine("goqmail/Postfix msg/s (standalone listener)", r.RatiosListener)
	if len(r.Machine.Disk.FsyncRenamePerSec) > 0 {
		fmt.Fprintf(w, "disk limit, fsync'd create+rename/s: 1 writer %.0f, 8 writers %.0f\n",
			r.Machine.Disk.FsyncRenamePerSec["1"], r.Machine.Disk.FsyncRenamePerSec["8"])
	}
	for _, run := range r.Runs {
		if !run.OK() {
			fmt.Fprintf(w, "FAILED %s/%s round %d: %s\n", run.Workload, run.Server, run.Round, run.Error)
		}
	}
	return nil
}
