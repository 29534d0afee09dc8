//go:build soak

package test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	awclient "github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// The soak (scripts/soak.sh, `task soak`) is behind the build tag soak: it
// runs for ten minutes, so the suite leaves it out.
const (
	envSoakDuration = "AW_SOAK_DURATION" // how long tasks are submitted (default 10m)
	envSoakReport   = "AW_SOAK_REPORT"   // a file the figures are written to, in markdown
	soakGroup       = "production"
	soakSampleEvery = 10 * time.Second
	// soakInFlight bounds the tasks submitted and not yet final: the four
	// slots of the two workers busy and a short queue, so a cancel right
	// after a submission finds the task waiting.
	soakInFlight = 6
	// soakSleep is how long slow.yml sleeps in the soak; the odd value
	// picks out its processes.
	soakSleep = "30.7"
)

// Flatness: the median of the last minute's samples against the second
// minute's may grow by at most these.
const (
	soakRSSGrowth       = 0.25
	soakRSSGrowthMin    = 8 << 20
	soakGoroutineGrowth = 20
	soakFDGrowth        = 10
)

// soakCancel is when a task of the soak is cancelled, if ever.
type soakCancel int

const (
	noCancel      soakCancel = iota
	cancelQueued             // right after submission, while it waits behind busy workers
	cancelRunning            // once its status says running
	cancelRacing             // after a random delay of up to 2 s: it may have ended first
)

// soakKind is one sort of task of the soak's stream and the final states it
// may end in.
type soakKind struct {
	name     string
	playbook string
	vars     map[string]any
	timeout  int
	cancel   soakCancel
	want     []schemas.State
}

// soakMix is the stream's cycle of ten tasks: half plain short tasks, the
// rest fail, time out or are cancelled waiting, running or at any moment.
func soakMix() []soakKind {
	ok := soakKind{name: "ok", playbook: "quick.yml", want: []schemas.State{schemas.StateSuccess}}
	slow := map[string]any{"seconds": soakSleep}
	return []soakKind{
		ok,
		{name: "cancel-queued", playbook: "quick.yml", cancel: cancelQueued, want: []schemas.State{schemas.StateCancelled}},
		ok,
		{name: "timeout", playbook: "slow.yml", vars: slow, timeout: 1, want: []schemas.State{schemas.StateTimeout}},
		ok,
		{name: "fail", playbook: "fail.yml", want: []schemas.State{schemas.StateFailed}},
		ok,
		{name: "cancel-running", playbook: "slow.yml", vars: slow, cancel: cancelRunning, want: []schemas.State{schemas.StateCancelled}},
		ok,
		// A cancel racing the end of a short task may come too late.
		{name: "cancel-racing", playbook: "quick.yml", cancel: cancelRacing, want: []schemas.State{schemas.StateCancelled, schemas.StateSuccess}},
	}
}

// soakSample is what one worker looked like at one moment.
type soakSample struct {
	at         time.Duration
	rss        float64 // the worker process, from /metrics
	goroutines float64
	fds        float64
	heap       float64 // Go heap in use
	procs      float64 // processes in the worker's tree, itself included
	treeRSS    float64 // their resident memory together
}

// soakWorker is a worker of the soak and its samples.
type soakWorker struct {
	proc    *workerProc
	metrics string // its /metrics URL
	samples []soakSample
}

// soakRun is the state of a soak: what was submitted, what ended how.
type soakRun struct {
	t       *testing.T
	url     string
	cl      *awclient.Client
	c       *client
	wg      sync.WaitGroup
	cancels atomic.Int64 // alternates the library and the CLI

	mu       sync.Mutex
	kinds    map[string]*soakKind // by task id
	order    []string             // task ids as submitted
	final    map[string]schemas.State
	problems []string
}

func newSoakRun(t *testing.T, url string) *soakRun {
	c := connectClient(t, url)
	cl, err := awclient.New(c.nc, jsbridge.Names{Prefix: "ansible", Group: soakGroup})
	require.NoError(t, err)
	return &soakRun{t: t, url: url, cl: cl, c: c, kinds: map[string]*soakKind{}, final: map[string]schemas.State{}}
}

// problem records a failure seen off the test's goroutine.
func (r *soakRun) problem(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.problems) < 50 {
		r.problems = append(r.problems, fmt.Sprintf(format, args...))
	}
}

// watch records the first final state of every task from the status
// bucket, and a task that ends twice differently.
func (r *soakRun) watch(ctx context.Context) error {
	kv, err := r.c.js.KeyValue(ctx, jsbridge.StatusBucket)
	if err != nil {
		return fmt.Errorf("status bucket: %w", err)
	}
	w, err := kv.Watch(ctx, soakGroup+".*")
	if err != nil {
		return fmt.Errorf("watch statuses: %w", err)
	}
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := schemas.ParseTaskStatus(e.Value())
			if err != nil {
				r.problem("status %s: %v", e.Key(), err)
				continue
			}
			if st.State.Final() {
				r.ended(st.TaskID, st.State)
			}
		}
	}()
	return nil
}

func (r *soakRun) ended(id string, state schemas.State) {
	r.mu.Lock()
	prev, seen := r.final[id]
	if !seen {
		r.final[id] = state
	}
	r.mu.Unlock()
	if seen && prev != state {
		r.problem("task %s ended %s, then %s", id, prev, state)
	}
}

// inFlight is the number of tasks submitted and not yet final.
func (r *soakRun) inFlight() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order) - len(r.final)
}

// submitFor submits the mix over and over for d, keeping soakInFlight
// tasks submitted and not yet final.
func (r *soakRun) submitFor(ctx context.Context, d time.Duration) {
	kinds := soakMix()
	end := time.Now().Add(d)
	for i := 0; ; i++ {
		for r.inFlight() >= soakInFlight && time.Now().Before(end) {
			time.Sleep(20 * time.Millisecond)
		}
		if !time.Now().Before(end) {
			return
		}
		k := &kinds[i%len(kinds)]
		r.submit(ctx, fmt.Sprintf("soak-%05d-%s", i, k.name), k)
	}
}

// submit submits one task of kind k and sets its cancel going.
func (r *soakRun) submit(ctx context.Context, id string, k *soakKind) {
	r.mu.Lock()
	r.kinds[id] = k
	r.order = append(r.order, id)
	r.mu.Unlock()
	req := schemas.TaskRequest{TaskID: id, Playbook: k.playbook, Inventory: "inventory/hosts", ExtraVars: k.vars, Timeout: k.timeout}
	if _, err := r.cl.Submit(ctx, req); err != nil {
		r.problem("submit %s: %v", id, err)
		r.ended(id, "not submitted")
		return
	}
	switch k.cancel {
	case cancelQueued:
		r.cancel(ctx, id, false)
	case cancelRunning:
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			if err := r.waitRunning(ctx, id); err != nil {
				r.problem("%v", err)
				return
			}
			r.cancel(ctx, id, false)
		}()
	case cancelRacing:
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			time.Sleep(rand.N(2 * time.Second)) // a moment anywhere in a short task's life
			r.cancel(ctx, id, true)
		}()
	}
}

// waitRunning polls the task's status until it says running.
func (r *soakRun) waitRunning(ctx context.Context, id string) error {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		st, err := r.c.status(soakGroup, id)
		switch {
		case err == nil && st.State == schemas.StateRunning:
			return nil
		case err == nil && st.State.Final():
			return fmt.Errorf("task %s ended %s before it could be cancelled running", id, st.State)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("task %s not running after 3 minutes", id)
}

// cancel cancels task id, every other time with the client library and
// with `ansible-worker cancel`. late says the task may have ended already.
func (r *soakRun) cancel(ctx context.Context, id string, late bool) {
	if r.cancels.Add(1)%2 == 0 {
		reply, err := r.cl.Cancel(ctx, id)
		if err != nil || (!late && reply.Result != jsbridge.CancelDone && reply.Result != jsbridge.CancelStopping) {
			r.problem("cancel %s with the library: %+v, %v", id, reply, err)
		}
		return
	}
	cmd := exec.CommandContext(ctx, binary, "cancel", "-s", r.url, id)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case late && errors.As(err, &exit) && exit.ExitCode() == 1:
		// It had finished, or finished before it could be stopped: its
		// final state is checked at the end.
	default:
		r.problem("ansible-worker cancel %s: %v: %s", id, err, out)
	}
}

// sampleEvery samples every worker now, before it returns, and every
// soakSampleEvery until the returned function is called, which waits for
// the last sample.
func (r *soakRun) sampleEvery(workers []*soakWorker) func() {
	start := time.Now()
	stop, done, first := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(soakSampleEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			for _, w := range workers {
				s, err := r.sample(w, time.Since(start))
				if err != nil {
					r.problem("sample worker %s: %v", w.proc.id, err)
					continue
				}
				w.samples = append(w.samples, s)
			}
			if i == 0 {
				close(first)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	<-first
	return func() { close(stop); <-done }
}

// sample reads a worker's memory, goroutines and open files from its
// /metrics, and counts the processes of its tree.
func (r *soakRun) sample(w *soakWorker, at time.Duration) (soakSample, error) {
	code, body := get(r.t, w.metrics)
	if code != 200 {
		return soakSample{}, fmt.Errorf("GET %s: %d %s", w.metrics, code, body)
	}
	s := soakSample{at: at, rss: metricValue(r.t, body, "process_resident_memory_bytes"),
		goroutines: metricValue(r.t, body, "go_goroutines"), fds: metricValue(r.t, body, "process_open_fds"),
		heap: metricValue(r.t, body, "go_memstats_heap_inuse_bytes")}
	if s.rss < 0 || s.goroutines < 0 || s.fds < 0 || s.heap < 0 {
		return s, fmt.Errorf("process or Go collector missing from /metrics:\n%s", body)
	}
	s.procs, s.treeRSS = processTree(w.proc.cmd.Process.Pid)
	return s, nil
}

// processTree returns the number of processes under pid, pid included,
// and their resident memory in bytes, from /proc.
func processTree(pid int) (float64, float64) {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	parent, pages := map[int]int{}, map[int]float64{}
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		end := strings.LastIndexByte(s, ')') // the command may hold spaces and parentheses
		if end < 0 {
			continue
		}
		f := strings.Fields(s[end+1:]) // from field 3, the state
		if len(f) < 22 {
			continue
		}
		me, _ := strconv.Atoi(strings.Fields(s)[0])
		parent[me], _ = strconv.Atoi(f[1])
		pages[me], _ = strconv.ParseFloat(f[21], 64)
	}
	var n, rss float64
	for p := range parent {
		for q := p; q > 1; q = parent[q] {
			if q == pid {
				n, rss = n+1, rss+pages[p]*float64(os.Getpagesize())
				break
			}
		}
	}
	return n, rss
}

// drain waits until every submitted task has a final state.
func (r *soakRun) drain(t *testing.T) {
	checkFor(t, 5*time.Minute, 500*time.Millisecond, func() error {
		if n := r.inFlight(); n > 0 {
			return fmt.Errorf("%d tasks not final", n)
		}
		return nil
	})
}

// soakTally is what became of the tasks.
type soakTally struct {
	states          map[schemas.State]int
	byKind          map[string]map[schemas.State]int
	byWorker        map[string]int
	cancelledQueued int // "cancelled before it started"
	cancelledLive   int // "cancelled on request"
	lost            int // no status
}

// verify reads every task's status once more: final, in a state its kind
// allows, on its first attempt.
func (r *soakRun) verify(t *testing.T) soakTally {
	tally := soakTally{states: map[schemas.State]int{}, byKind: map[string]map[schemas.State]int{}, byWorker: map[string]int{}}
	for _, id := range r.order {
		k := r.kinds[id]
		st, err := r.c.status(soakGroup, id)
		if err != nil {
			r.problem("task %s lost: %v", id, err)
			tally.lost++
			continue
		}
		if !slices.Contains(k.want, st.State) {
			r.problem("task %s (%s) ended %s (%q), want one of %v", id, k.name, st.State, st.Err(), k.want)
		}
		// A task cancelled while it waits is never delivered: attempt 0.
		neverRan := st.Attempt == 0 && st.Err() == "cancelled before it started"
		if st.Attempt != 1 && !neverRan {
			r.problem("task %s (%s) ended %s on attempt %d", id, k.name, st.State, st.Attempt)
		}
		tally.states[st.State]++
		if tally.byKind[k.name] == nil {
			tally.byKind[k.name] = map[schemas.State]int{}
		}
		tally.byKind[k.name][st.State]++
		if st.Worker != "" {
			tally.byWorker[st.Worker]++
		}
		switch st.Err() {
		case "cancelled before it started":
			tally.cancelledQueued++
		case "cancelled on request":
			tally.cancelledLive++
		}
	}
	waitQueueEmpty(t, r.url)
	checkFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if left := processesWith("sleep", soakSleep); len(left) > 0 {
			return fmt.Errorf("playbook processes left: %v", left)
		}
		return nil
	})
	return tally
}

// soakFigure is one line of the figures table.
type soakFigure struct {
	name  string
	scale float64
	get   func(soakSample) float64
}

func soakFigures() []soakFigure {
	return []soakFigure{
		{"RSS (MiB)", 1 << 20, func(s soakSample) float64 { return s.rss }},
		{"goroutines", 1, func(s soakSample) float64 { return s.goroutines }},
		{"open fds", 1, func(s soakSample) float64 { return s.fds }},
		{"Go heap in use (MiB)", 1 << 20, func(s soakSample) float64 { return s.heap }},
		{"processes in its tree", 1, func(s soakSample) float64 { return s.procs }},
		{"RSS of its tree (MiB)", 1 << 20, func(s soakSample) float64 { return s.treeRSS }},
	}
}

// windows returns the values of the samples of the second minute and of
// the last minute of a run of d.
func windows(samples []soakSample, d time.Duration, get func(soakSample) float64) (second, last []float64) {
	for _, s := range samples {
		if s.at >= time.Minute && s.at < 2*time.Minute {
			second = append(second, get(s))
		}
		if s.at >= d-time.Minute {
			last = append(last, get(s))
		}
	}
	return second, last
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := slices.Clone(xs)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// checkFlat fails a worker whose memory, goroutines or open files grew
// from the second minute to the last.
func checkFlat(t *testing.T, w *soakWorker, d time.Duration) {
	for _, f := range soakFigures()[:3] {
		second, last := windows(w.samples, d, f.get)
		require.NotEmpty(t, second, "no sample in the second minute")
		require.NotEmpty(t, last, "no sample in the last minute")
		grew := median(last) - median(second)
		allowed := map[string]float64{
			"RSS (MiB)":  max(soakRSSGrowth*median(second), soakRSSGrowthMin),
			"goroutines": soakGoroutineGrowth,
			"open fds":   soakFDGrowth,
		}[f.name]
		require.LessOrEqual(t, grew, allowed, "worker %s: %s grew from %.1f to %.1f (medians of the second and last minute)",
			w.proc.id, f.name, median(second)/f.scale, median(last)/f.scale)
	}
}

// report is the soak's figures in markdown.
func (r *soakRun) report(workers []*soakWorker, d time.Duration, tally soakTally) string {
	var b strings.Builder
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&b, "Soak of %s ending %s: 2 workers × concurrency 2, %s, %d CPUs, load average at the end %s.\n\n",
		d, time.Now().UTC().Format("2006-01-02 15:04 UTC"), warmMode(), runtime.NumCPU(), strings.Join(strings.Fields(string(load))[:3], " "))
	b.WriteString("| worker | figure | start | 2nd minute (median) | last minute (median) | max |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, w := range workers {
		for _, f := range soakFigures() {
			second, last := windows(w.samples, d, f.get)
			hi := 0.0
			for _, s := range w.samples {
				hi = max(hi, f.get(s))
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.1f |\n", w.proc.id, f.name,
				f.get(w.samples[0])/f.scale, median(second)/f.scale, median(last)/f.scale, hi/f.scale)
		}
	}
	total := len(r.order)
	fmt.Fprintf(&b, "\nTasks: %d in %s (%.0f per minute), %d lost; run by worker: %s.\n", total, d,
		float64(total)/d.Minutes(), tally.lost, counts(tally.byWorker))
	fmt.Fprintf(&b, "Final states: %s; cancelled while waiting %d, while running %d.\n\n",
		counts(tally.states), tally.cancelledQueued, tally.cancelledLive)
	b.WriteString("| kind | tasks | final states |\n| --- | ---: | --- |\n")
	for _, k := range soakMix() {
		if byState, ok := tally.byKind[k.name]; ok {
			n := 0
			for _, c := range byState {
				n += c
			}
			fmt.Fprintf(&b, "| %s | %d | %s |\n", k.name, n, counts(byState))
			delete(tally.byKind, k.name) // "ok" comes five times in the mix
		}
	}
	return b.String()
}

// counts formats a count per key as "a 1, b 2", in key order.
func counts[K ~string](m map[K]int) string {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func warmMode() string {
	if os.Getenv(envTestWarmStart) == "false" {
		return "warm starts off"
	}
	return "warm starts on"
}

func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv(envSoakDuration)
	if v == "" {
		return 10 * time.Minute
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, envSoakDuration)
	require.GreaterOrEqual(t, d, 90*time.Second, "%s: the second and the last minute are compared", envSoakDuration)
	return d
}

// Two workers run a steady stream of short tasks, with failures, timeouts
// and cancels (waiting, running, racing the end) mixed in, for
// AW_SOAK_DURATION: every task ends in the state its kind allows, once, and
// none is lost; each worker's memory, goroutines and open files stay flat.
func TestSoak(t *testing.T) {
	d := soakDuration(t)
	ns := startServer(t)
	var workers []*soakWorker
	for range 2 {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		wp := startWorker(t, ns.url, workerOpts{Concurrency: 2, Extra: "kill_grace: 2\nhttp_listen: " + addr})
		workers = append(workers, &soakWorker{proc: wp, metrics: "http://" + addr + "/metrics"})
	}
	r := newSoakRun(t, ns.url)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	require.NoError(t, r.watch(ctx))

	stopSampling := r.sampleEvery(workers)
	r.submitFor(ctx, d)
	stopSampling()
	r.wg.Wait()
	r.drain(t)
	tally := r.verify(t)

	report := r.report(workers, d, tally)
	t.Log("\n" + report)
	if path := os.Getenv(envSoakReport); path != "" {
		require.NoError(t, os.WriteFile(path, []byte(report), 0o644))
	}
	require.Empty(t, r.problems)
	for _, w := range workers {
		checkFlat(t, w, d)
	}
}
