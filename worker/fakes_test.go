package worker

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/ansible-worker/ansible-worker/schemas"
)

// Fakes of the ports, for unit tests of the lifecycle rules without a
// server (see lifecycle_test.go).

// fakeSettler records what became of a delivery.
type fakeSettler struct {
	mu    sync.Mutex
	calls []string
}

func (s *fakeSettler) add(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

func (s *fakeSettler) InProgress() error         { s.add("in-progress"); return nil }
func (s *fakeSettler) Ack(context.Context) error { s.add("ack"); return nil }
func (s *fakeSettler) Nak(d time.Duration) error { s.add("nak " + d.String()); return nil }
func (s *fakeSettler) Term(reason string) error  { s.add("term " + reason); return nil }
func (s *fakeSettler) settled() []string         { s.mu.Lock(); defer s.mu.Unlock(); return final(s.calls) }
func final(calls []string) []string              { return filterOut(calls, "in-progress") }
func filterOut(l []string, drop string) []string {
	var out []string
	for _, c := range l {
		if c != drop {
			out = append(out, c)
		}
	}
	return out
}

// fakeSource is a queue whose Waiting count the test sets.
type fakeSource struct {
	mu      sync.Mutex
	waiting uint64
	asked   int // Waiting calls
	removed []uint64
}

func (s *fakeSource) Next(ctx context.Context, _ time.Duration) (*Delivery, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (s *fakeSource) Waiting(context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	return s.waiting, nil
}
func (s *fakeSource) EachStored(context.Context, int, func(Submission)) error { return nil }
func (s *fakeSource) Authentic(_ context.Context, n Submission) (Submission, error) {
	return n, nil
}
func (s *fakeSource) Remove(_ context.Context, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = append(s.removed, seq)
	return nil
}
func (s *fakeSource) Notify(func(Submission)) (func(), error) { return func() {}, nil }

// fakeLedger keeps statuses in memory; its errors and hooks are the test's.
type fakeLedger struct {
	mu        sync.Mutex
	statuses  map[string]schemas.TaskStatus
	history   map[string][]schemas.State
	claims    map[string]uint64
	cancels   map[string]bool
	handBacks map[string]int
	// getErr and handBacksErr, when set, fail those reads.
	getErr, handBacksErr error
	// getFailures is how many Get calls fail before they answer.
	getFailures int
	// beforeTransition runs before each compare-and-set, unlocked.
	beforeTransition func(id string)
}

func newFakeLedger() *fakeLedger {
	return &fakeLedger{statuses: map[string]schemas.TaskStatus{}, history: map[string][]schemas.State{},
		claims: map[string]uint64{}, cancels: map[string]bool{}, handBacks: map[string]int{}}
}

func (l *fakeLedger) Claim(_ context.Context, _, id string, seq uint64) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if cur, ok := l.claims[id]; ok {
		return cur == seq, nil
	}
	l.claims[id] = seq
	return true, nil
}

func (l *fakeLedger) Get(_ context.Context, _, id string) (*schemas.TaskStatus, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.getErr != nil {
		return nil, l.getErr
	}
	if l.getFailures > 0 {
		l.getFailures--
		return nil, errors.New("no responders: the bucket has no leader")
	}
	st, ok := l.statuses[id]
	if !ok {
		return nil, fmt.Errorf("task %s: %w", id, ErrNoStatus)
	}
	return &st, nil
}

func (l *fakeLedger) set(st schemas.TaskStatus) {
	l.statuses[st.TaskID] = st
	l.history[st.TaskID] = append(l.history[st.TaskID], st.State)
}

func (l *fakeLedger) Put(_ context.Context, st *schemas.TaskStatus) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.set(*st)
	return nil
}

func (l *fakeLedger) Transition(_ context.Context, _, id string,
	change func(*schemas.TaskStatus) (*schemas.TaskStatus, bool)) (*schemas.TaskStatus, bool, error) {
	if l.beforeTransition != nil {
		l.beforeTransition(id)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var cur *schemas.TaskStatus
	if st, ok := l.statuses[id]; ok {
		cur = &st
	}
	next, ok := change(cur)
	if !ok {
		return cur, false, nil
	}
	l.set(*next)
	return next, true, nil
}

func (l *fakeLedger) MarkCancel(_ context.Context, _, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cancels[id] = true
	return nil
}

func (l *fakeLedger) CancelRequested(_ context.Context, _, id string) (bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cancels[id], nil
}

func (l *fakeLedger) AddHandBack(_ context.Context, _, id string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handBacks[id]++
	return nil
}

func (l *fakeLedger) HandBacks(_ context.Context, _, id string) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handBacks[id], l.handBacksErr
}

// status returns the task's status, or nil.
func (l *fakeLedger) status(id string) *schemas.TaskStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.statuses[id]; ok {
		return &st
	}
	return nil
}

// states returns every state stored for the task, in order.
func (l *fakeLedger) states(id string) []schemas.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]schemas.State(nil), l.history[id]...)
}

// fakeSinks records the messages of every run.
type fakeSinks struct {
	mu   sync.Mutex
	msgs map[string][]string
}

type fakeSink struct {
	s   *fakeSinks
	key string
}

func (s *fakeSinks) Open(_ context.Context, run RunID) RunSink {
	return &fakeSink{s: s, key: run.TaskID + "/" + strconv.Itoa(run.Attempt)}
}

func (k *fakeSink) add(m string) {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	if k.s.msgs == nil {
		k.s.msgs = map[string][]string{}
	}
	k.s.msgs[k.key] = append(k.s.msgs[k.key], m)
}

func (k *fakeSink) Event(counter int, _ []byte)     { k.add("event " + strconv.Itoa(counter)) }
func (k *fakeSink) RunnerStatus(n int, data []byte) { k.add("status " + string(data)) }
func (k *fakeSink) Close(context.Context) error     { k.add("close"); return nil }

// runs lists the runs that published something, sorted.
func (s *fakeSinks) runs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.msgs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// fakeCancels serves nothing: the tests call decideCancel themselves.
type fakeCancels struct{}

func (fakeCancels) Serve(func(string), func(context.Context, string) schemas.CancelReply) (func(), error) {
	return func() {}, nil
}
