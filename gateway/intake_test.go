package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/client"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// fakeTasks records what the intake asks of NATS; submitFails fails that
// many submissions first, as an unreachable server would.
type fakeTasks struct {
	mu          sync.Mutex
	submitFails int
	submitted   []string
	refused     map[string]string
	cancelled   []string
	exists      map[string]bool
	answered    []string
}

func (f *fakeTasks) RespondRefused(_ context.Context, n schemas.NamedRequest, format schemas.RequestFormat, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answered = append(f.answered, fmt.Sprintf("%s/%s %s: %s", n.JobName, n.RequestID, format, reason))
	return nil
}

func newFakeTasks() *fakeTasks {
	return &fakeTasks{refused: map[string]string{}, exists: map[string]bool{}}
}

func (f *fakeTasks) SubmitJSON(_ context.Context, body []byte) (*client.Receipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.submitFails > 0 {
		f.submitFails--
		return nil, errors.New("nats: no servers available")
	}
	f.submitted = append(f.submitted, string(body))
	return &client.Receipt{TaskID: "x", Sequence: uint64(len(f.submitted))}, nil
}

func (f *fakeTasks) Refuse(_ context.Context, id, reason string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.exists[id] {
		return client.ErrTaskExists
	}
	f.refused[id] = reason
	return nil
}

func (f *fakeTasks) Cancel(_ context.Context, id string) (jsbridge.CancelReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled = append(f.cancelled, id)
	return jsbridge.CancelReply{TaskID: id, Result: jsbridge.CancelStopping}, nil
}

type intakeBundle struct {
	tasks *fakeTasks
	in    *Intake
	acked []string
	mu    sync.Mutex
}

func setupIntake(t *testing.T) *intakeBundle {
	t.Helper()
	b := &intakeBundle{tasks: newFakeTasks()}
	b.in = NewIntake(b.tasks, jsbridge.Names{Prefix: "ansible", Group: "production"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return b
}

func (b *intakeBundle) msg(topic, payload string) Message {
	return Message{Topic: topic, Payload: []byte(payload), QoS: 2, Ack: func() error {
		b.mu.Lock()
		defer b.mu.Unlock()
		b.acked = append(b.acked, topic+" "+payload)
		return nil
	}}
}

// run passes msgs through the intake and returns once each is acked.
func (b *intakeBundle) run(t *testing.T, msgs ...Message) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	inbox := make(chan Message, len(msgs))
	for _, m := range msgs {
		inbox <- m
	}
	done := make(chan struct{})
	go func() { defer close(done); b.in.Run(ctx, inbox) }()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.acked) == len(msgs)
	}, 9*time.Second, 10*time.Millisecond)
	cancel()
	<-done
}

const okTask = `{"task_id":"t1","playbook":"a.yml","inventory":"hosts"}`

func TestIntakeCarriesTasksAndCancels(t *testing.T) {
	b := setupIntake(t)
	b.run(t,
		b.msg("ansible/production/tasks", okTask),
		b.msg("ansible/production/tasks/t1/cancel", ""),
		b.msg("ansible/other/tasks", okTask), // not the gateway's: acked, not carried
	)
	require.Equal(t, []string{okTask}, b.tasks.submitted)
	require.Equal(t, []string{"t1"}, b.tasks.cancelled)
	require.Len(t, b.acked, 3)
}

func TestIntakeRefusesBadRequestsWithTheirReason(t *testing.T) {
	b := setupIntake(t)
	b.tasks.exists["dup"] = true
	b.run(t,
		b.msg("ansible/production/tasks", `{"task_id":"bad1","playbook":"a.yml"}`),
		b.msg("ansible/production/tasks", `not json`),
		b.msg("ansible/production/tasks", `{"task_id":"dup","playbook":"a.yml"}`),
		b.msg("ansible/production/tasks/a/b/cancel", ""),
	)
	require.Empty(t, b.tasks.submitted)
	require.Contains(t, b.tasks.refused["bad1"], "inventory")
	require.Len(t, b.tasks.refused, 1, "the status of an id in use stays; junk has no id")
	require.Empty(t, b.tasks.cancelled)
}

// A named-job request refused at the gateway is answered as a worker
// answers one: a failure response in its own format.
func TestIntakeAnswersRefusedNamedRequests(t *testing.T) {
	b := setupIntake(t)
	b.run(t,
		b.msg("ansible/production/tasks", "---\ndeploy:\n  request_id: not valid!\n"),
		b.msg("ansible/production/tasks", `{"deploy": {"request_id": "r-1"}, "other": {"request_id": "r-2"}}`),
		b.msg("ansible/production/tasks", "deploy:\n  request_id: r-3\n"),
	)
	require.Len(t, b.tasks.answered, 2)
	require.Contains(t, b.tasks.answered[0], "deploy/not valid! yaml: ")
	require.Contains(t, b.tasks.answered[0], "request_id")
	require.Contains(t, b.tasks.answered[1], "deploy/r-1 json: ")
	require.Contains(t, b.tasks.answered[1], "one job per request")
	require.Equal(t, []string{"deploy:\n  request_id: r-3\n"}, b.tasks.submitted, "a valid one is carried as it came")
}

// A task NATS cannot take yet is retried, not acked before it is stored.
func TestIntakeRetriesUntilStored(t *testing.T) {
	b := setupIntake(t)
	b.tasks.submitFails = 2
	b.run(t, b.msg("ansible/production/tasks", okTask))
	require.Equal(t, []string{okTask}, b.tasks.submitted)
}

// A gateway stopped while NATS is away leaves the message unacknowledged,
// for the broker to deliver again.
func TestIntakeDoesNotAckWhatItCouldNotCarry(t *testing.T) {
	b := setupIntake(t)
	b.tasks.submitFails = 1 << 30
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	require.False(t, b.in.Handle(ctx, b.msg("ansible/production/tasks", okTask)))
	require.Empty(t, b.acked)
}
