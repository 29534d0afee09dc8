// Command ansible-worker-bench runs the benchmark suite (package bench):
// ansible-worker against raw ansible-playbook and ansible-runner, dispatch
// latency, throughput and memory, and prints one table on stdout.
// Progress goes to stderr. It exits non-zero only when a run fails.
//
// Usage: go run ./cmd/ansible-worker-bench [-rounds N] [-quick] [-only playbook,loop,dispatch,throughput,memory] [-bin PATH]
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/ansible-worker/ansible-worker/bench"
)

func main() {
	opts := bench.Options{}
	flag.IntVar(&opts.Rounds, "rounds", 5, "measured rounds per comparison, after one warm-up round")
	flag.BoolVar(&opts.Quick, "quick", false, "a smoke run: at most 2 rounds and fewer tasks")
	only := flag.String("only", "", "comma list of measurements to run: "+strings.Join(bench.Measurements, ","))
	flag.StringVar(&opts.Bin, "bin", "", "a built ansible-worker binary (default: build one)")
	flag.StringVar(&opts.Root, "root", ".", "the repository root")
	flag.Parse()
	if *only != "" {
		opts.Only = strings.Split(*only, ",")
	}
	opts.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	// SIGINT/SIGTERM cancel the runs, so the suite still stops its
	// processes and removes its temp directory.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench.Run(ctx, opts, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ansible-worker-bench:", err)
		stop()
		os.Exit(1)
	}
}
