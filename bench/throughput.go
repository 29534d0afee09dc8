//go:build linux

package bench

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// measureThroughput: one worker at concurrency 8 with the stand-in, N
// tasks published as fast as the acks allow; tasks/s from the first
// publish to the last final status. Beside it, the raw JetStream async
// publish rate on the same server: the ceiling no worker can pass.
func (s *Suite) measureThroughput(ctx context.Context) error {
	w, c, stop, err := s.startDialed(ctx, workerSpec{name: "throughput", concurrency: 8, ansiblePlaybook: s.standIn})
	if err != nil {
		return err
	}
	defer stop()
	n := s.count(2000, 200)
	finals, err := c.countStates(ctx, n, schemas.State.Final)
	if err != nil {
		return err
	}
	start := time.Now()
	id := func(i int) string { return fmt.Sprintf("tp-%d", i) }
	if err := c.publishAsync(ctx, n, id, taskMsg); err != nil {
		return err
	}
	s.log.Info("throughput: all tasks stored", "tasks", n, "after", time.Since(start).Round(time.Millisecond))
	end, err := waitTime(ctx, finals, 10*time.Minute, fmt.Sprintf("%d final statuses", n))
	if err != nil {
		return fmt.Errorf("%w\nworker log:\n%s", err, w.logTail())
	}
	tasks := float64(n) / end.Sub(start).Seconds()
	pub, err := c.publishRate(ctx, n)
	if err != nil {
		return err
	}
	execs, err := spawnRate(ctx, s.standIn, n, 8)
	if err != nil {
		return err
	}
	s.rows = append(s.rows,
		Row{Figure: fmt.Sprintf("throughput, stand-in, concurrency 8 (%d tasks)", n),
			Worker: fmt.Sprintf("%.0f tasks/s", tasks), Ratio: fmt.Sprintf("%.2f× of the exec ceiling", tasks/execs)},
		Row{Figure: fmt.Sprintf("raw exec of the stand-in, 8 at a time (%d execs): the machine's ceiling", n),
			Worker: fmt.Sprintf("%.0f execs/s", execs)},
		Row{Figure: fmt.Sprintf("raw JetStream async publish, same server (%d msgs)", n),
			Worker: fmt.Sprintf("%.0f msgs/s", pub)})
	return nil
}

// spawnRate runs the executable n times, parallel at a time, and returns
// runs/s: no task can run faster than its process starts.
func spawnRate(ctx context.Context, exe string, n, parallel int) (float64, error) {
	jobs := make(chan struct{}, n)
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	errs := make(chan error, parallel)
	start := time.Now()
	var wg sync.WaitGroup
	for range parallel {
		wg.Go(func() {
			for range jobs {
				if err := exec.CommandContext(ctx, exe).Run(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, fmt.Errorf("run %s: %w", exe, err)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// publishRate publishes n small messages with message ids to a scratch
// stream (file storage, as the tasks stream) and returns messages/s until
// the last ack; the stream is deleted afterwards.
func (c *conn) publishRate(ctx context.Context, n int) (float64, error) {
	const name = "BENCH_SCRATCH"
	if _, err := c.js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{"bench.scratch"},
		Storage: jetstream.FileStorage}); err != nil {
		return 0, err
	}
	defer func() { _ = c.js.DeleteStream(context.WithoutCancel(ctx), name) }()
	body := taskMsg("scratch-0").Data // the size of a task
	msg := func(string) *nats.Msg { return &nats.Msg{Subject: "bench.scratch", Data: body} }
	start := time.Now()
	if err := c.publishAsync(ctx, n, func(i int) string { return fmt.Sprintf("s-%d", i) }, msg); err != nil {
		return 0, err
	}
	return float64(n) / time.Since(start).Seconds(), nil
}
