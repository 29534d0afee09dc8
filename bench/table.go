//go:build linux

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the table; empty cells print as "—".
type Row struct {
	Figure, Raw, Runner, Worker, Ratio, Warm string
}

// compareRow reports medians of the four sides: ansible-runner and the
// warm-started worker with their median ratios to raw, the cold worker's
// ratio in a column of its own (per-round ratios, so load that hits one
// round hits both sides of the ratio).
func compareRow(figure string, raw, runner, worker, warm []float64, f func(float64) string) Row {
	return Row{
		Figure: figure,
		Raw:    f(Median(raw)),
		Runner: fmt.Sprintf("%s (%.2f×)", f(Median(runner)), Median(Ratios(runner, raw))),
		Worker: f(Median(worker)),
		Ratio:  fmt.Sprintf("%.2f×", Median(Ratios(worker, raw))),
		Warm:   fmt.Sprintf("%s (%.2f×)", f(Median(warm)), Median(Ratios(warm, raw))),
	}
}

func fmtSeconds(s float64) string { return fmt.Sprintf("%.2f s", s) }

func fmtMillis(s float64) string { return fmt.Sprintf("%.1f ms", s*1000) }

func fmtMiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// printTable writes the machine and the table.
func (s *Suite) printTable(ctx context.Context, out io.Writer, took time.Duration) error {
	fmt.Fprintf(out, "machine: %d CPUs, %s; %s; %s; %s\n", runtime.NumCPU(), cpuModel(), runtime.Version(),
		firstLine(ctx, "ansible-playbook", "--version"), "ansible-runner "+firstLine(ctx, "ansible-runner", "--version"))
	fmt.Fprintf(out, "rounds: %d after one warm-up (quick: %v); measured in %s\n\n", s.rounds(), s.opts.Quick,
		took.Round(time.Second))
	tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "figure\traw ansible-playbook\tansible-runner\tworker (cold)\tworker/raw\tworker (warm)")
	for _, r := range s.rows {
		cells := []string{r.Figure, r.Raw, r.Runner, r.Worker, r.Ratio, r.Warm}
		for i, c := range cells {
			if c == "" {
				cells[i] = "—"
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// cpuModel is the first "model name" of /proc/cpuinfo.
func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// firstLine is the first line a version command prints.
func firstLine(ctx context.Context, argv ...string) string {
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout = &buf
	if err := cmd.Run(); err != nil {
		return argv[0] + " (version unknown)"
	}
	line, _, _ := strings.Cut(buf.String(), "\n")
	return strings.TrimSpace(line)
}
