//go:build linux

package bench

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// measureDispatch: an idle worker, one task at a time, a stand-in that
// exits 0 at once; from the JetStream publish to `running` in KV and to
// the first runner status message.
func (s *Suite) measureDispatch(ctx context.Context) error {
	w, c, stop, err := s.startDialed(ctx, workerSpec{name: "dispatch", ansiblePlaybook: s.standIn})
	if err != nil {
		return err
	}
	defer stop()
	n := s.count(200, 20)
	var toKV, toStatus []float64
	for i := range n {
		kv, st, err := c.dispatchOne(ctx, fmt.Sprintf("dispatch-%d", i))
		if err != nil {
			return fmt.Errorf("task %d: %w\nworker log:\n%s", i, err, w.logTail())
		}
		toKV, toStatus = append(toKV, kv.Seconds()), append(toStatus, st.Seconds())
	}
	s.log.Info("dispatch measured", "tasks", n)
	row := func(fig string, xs []float64) Row {
		return Row{Figure: fig, Worker: fmt.Sprintf("%s / %s", fmtMillis(Percentile(xs, 50)), fmtMillis(Percentile(xs, 99)))}
	}
	s.rows = append(s.rows,
		row(fmt.Sprintf("dispatch, publish → running in KV (p50 / p99, %d tasks)", n), toKV),
		row(fmt.Sprintf("dispatch, publish → first runner status (p50 / p99, %d tasks)", n), toStatus))
	return nil
}

// dispatchOne publishes one task, having subscribed first, and returns
// the delays to its `running` status and to its first runner status. It
// returns once the task is final, so the next one finds the worker idle.
func (c *conn) dispatchOne(ctx context.Context, id string) (toKV, toStatus time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	statuses := make(chan *nats.Msg, 16)
	sub, err := c.nc.ChanSubscribe(jsbridge.RunnerStatusSubject(names.Group, id), statuses)
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	w, err := c.kv.Watch(ctx, names.StatusKey(id), jetstream.UpdatesOnly())
	if err != nil {
		return 0, 0, err
	}
	defer func() { _ = w.Stop() }()
	start := time.Now()
	if _, err := c.js.PublishMsg(ctx, taskMsg(id), jetstream.WithMsgID(id)); err != nil {
		return 0, 0, err
	}
	final := false
	for !final || toKV == 0 || toStatus == 0 {
		select {
		case <-statuses:
			if toStatus == 0 {
				toStatus = time.Since(start)
			}
		case e := <-w.Updates():
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			st, err := schemas.ParseTaskStatus(e.Value())
			if err != nil {
				return 0, 0, err
			}
			if st.State == schemas.StateRunning && toKV == 0 {
				toKV = time.Since(start)
			}
			if final = st.State.Final(); final && st.State != schemas.StateSuccess {
				return 0, 0, fmt.Errorf("task ended %s: %s", st.State, errorMessage(st))
			}
		case <-ctx.Done():
			return 0, 0, errors.New("no running status, runner status and final state within 60 s")
		}
	}
	return toKV, toStatus, nil
}

// errorMessage is a status's error message, or "" when it has none.
func errorMessage(st schemas.TaskStatus) string {
	if st.ErrorMessage == nil {
		return ""
	}
	return *st.ErrorMessage
}
