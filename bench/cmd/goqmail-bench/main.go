// Command goqmail-bench measures goqmail against Postfix on this machine
// (docs/performance.md); `make bench` runs it through bench/run.sh.
//
//	goqmail-bench -bin DIR [-quick] [-results DIR] [-messages N] [-rounds N]
//	    [-workloads e2e,relay,inject] [-keep]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/goqmail/goqmail/bench"
)

func main() {
	bin := flag.String("bin", "bin", "directory of the built goqmail programs")
	results := flag.String("results", "bench/results", "directory for the JSON report")
	quick := flag.Bool("quick", false, "reduced run for development (under a minute)")
	messages := flag.Int("messages", 0, "messages per run (default 5000, quick 200)")
	rounds := flag.Int("rounds", 0, "rounds of each workload (default 3, quick 1)")
	latency := flag.Int("latency", -1, "messages timed by the latency client per SMTP run (default 1000, quick 100)")
	workloads := flag.String("workloads", "e2e,relay,inject", "workloads to run, comma separated")
	servers := flag.String("servers", "", "only these servers, comma separated (postfix, goqmail-tcpserver, goqmail-listener, goqmail)")
	keep := flag.Bool("keep", false, "keep the instances' directories and logs")
	workDir := flag.String("workdir", "", "temporary directory (default: a new one under $TMPDIR)")
	flag.Parse()

	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "goqmail-bench:", bench.ErrNotRoot)
		os.Exit(111)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fatal(err)
	}
	cfg := bench.Config{
		Bin: abs, Messages: 5000, Size: 4096, Sessions: 20, Injectors: 10, Rounds: 3, Latency: 1000,
		DiskTime: 3 * time.Second, Stall: 60 * time.Second, Quick: *quick, Keep: *keep,
		Workloads: strings.Split(*workloads, ","), Log: os.Stderr,
		Command: strings.Join(os.Args, " "),
	}
	if *quick {
		// One round: a check that everything works, not a measurement.
		cfg.Messages, cfg.Rounds, cfg.Latency, cfg.DiskTime, cfg.Stall = 200, 1, 100, time.Second, 20*time.Second
	}
	if *messages > 0 {
		cfg.Messages = *messages
	}
	if *rounds > 0 {
		cfg.Rounds = *rounds
	}
	if *latency >= 0 {
		cfg.Latency = *latency
	}
	if *servers != "" {
		cfg.Servers = strings.Split(*servers, ",")
	}
	cfg.WorkDir = *workDir
	if cfg.WorkDir == "" {
		if cfg.WorkDir, err = os.MkdirTemp("", "goqmail-bench-"); err != nil {
			fatal(err)
		}
		if !*keep {
			defer os.RemoveAll(cfg.WorkDir)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := bench.Benchmark(ctx, cfg)
	if err != nil {
		fatal(err)
	}
	if err := rep.WriteTable(os.Stdout); err != nil {
		fatal(err)
	}
	path, err := rep.WriteJSON(*results)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("report: %s\n", path)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "goqmail-bench: fatal:", err)
	os.Exit(111)
}
