package web

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// stream is one server-sent event stream to one client. Its writes are
// serialised: the keep-alive comments come from a goroutine of their own.
type stream struct {
	mu     sync.Mutex
	w      http.ResponseWriter
	rc     *http.ResponseController
	cancel context.CancelFunc
}

// openStream starts an event stream on w. Its context ends when the client
// goes away, a write fails or the page's server stops; end must be called
// before the handler returns, and waits for the keep-alive goroutine.
func (h *handler) openStream(w http.ResponseWriter, r *http.Request) (s *stream, ctx context.Context, end func()) {
	ctx, cancel := context.WithCancel(r.Context())
	stopAfter := context.AfterFunc(h.ctx, cancel)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	w.WriteHeader(http.StatusOK)
	s = &stream{w: w, rc: http.NewResponseController(w), cancel: cancel}
	s.write("retry: 3000\n\n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(h.opts.KeepAlive)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.write(": keep-alive\n\n")
			}
		}
	}()
	return s, ctx, func() { cancel(); stopAfter(); <-done }
}

// write sends raw text and flushes it; a failed write ends the stream.
func (s *stream) write(text string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := fmt.Fprint(s.w, text)
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil {
		s.cancel()
	}
}

// send sends v, in JSON, as an event named event. JSON has no raw line
// breaks, so the data is one "data:" line whatever the task's output holds.
func (s *stream) send(event string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.cancel()
		return
	}
	s.write("event: " + event + "\ndata: " + string(b) + "\n\n")
}

// row is a task as the page shows it: its status and its playbook.
type row struct {
	schemas.TaskStatus
	Playbook string `json:"playbook"`
}

// output is a piece of a task's output: one runner event's stdout.
type output struct {
	Counter int    `json:"counter"`
	Stdout  string `json:"stdout"`
}

// problem says why a stream ends early.
type problem struct {
	Error string `json:"error"`
}

// ready ends the first batch of the task list.
type ready struct {
	Group string `json:"group"`
	Total int    `json:"total"` // tasks of the group
	Shown int    `json:"shown"` // how many of them were sent
}

// tasksEvents streams the group's tasks: the newest MaxTasks, then
// "ready", then every status written, each as a "task" event.
func (h *handler) tasksEvents(w http.ResponseWriter, r *http.Request) {
	s, ctx, end := h.openStream(w, r)
	defer end()
	var first []*schemas.TaskStatus
	total, live := 0, false
	err := h.src.WatchStatuses(ctx, func(st *schemas.TaskStatus) error {
		switch {
		case st == nil && !live:
			live = true
			first = newest(first, h.opts.MaxTasks)
			for _, st := range first {
				s.send("task", h.row(ctx, st, false))
			}
			s.send("ready", ready{Group: h.opts.Group, Total: total, Shown: len(first)})
			first = nil
		case st == nil:
		case !live:
			total++
			first = append(first, st)
			if len(first) > 2*h.opts.MaxTasks {
				first = newest(first, h.opts.MaxTasks)
			}
		default:
			s.send("task", h.row(ctx, st, false))
		}
		return ctx.Err()
	})
	if err != nil && ctx.Err() == nil {
		h.opts.Log.Warn("live page: the watch of the task statuses ended", "err", err)
		s.send("problem", problem{Error: "the task list cannot be followed now"})
	}
}

// newest sorts statuses newest first (by creation, then id) and keeps n.
func newest(sts []*schemas.TaskStatus, n int) []*schemas.TaskStatus {
	slices.SortFunc(sts, func(a, b *schemas.TaskStatus) int {
		if c := cmp.Compare(created(b), created(a)); c != 0 {
			return c
		}
		return strings.Compare(a.TaskID, b.TaskID)
	})
	return sts[:min(n, len(sts))]
}

func created(st *schemas.TaskStatus) int64 {
	if st.CreatedAt == nil {
		return 0
	}
	return st.CreatedAt.UnixMilli()
}

// taskEvents streams one task: its stored output and statuses, then the new
// ones, then "end" with its final status. 404 for an unknown task.
func (h *handler) taskEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, code := h.lookup(r.Context(), id); code != http.StatusOK {
		http.Error(w, http.StatusText(code), code)
		return
	}
	s, ctx, end := h.openStream(w, r)
	defer end()
	final, err := h.src.Follow(ctx, id, func(u jsbridge.Update) {
		switch {
		case u.Event != nil && u.Event.Stdout != "":
			s.send("output", output{Counter: u.Event.Counter, Stdout: plainText(u.Event.Stdout)})
		case u.Runner != nil:
			s.send("runner", map[string]string{"status": u.Runner.Status})
		case u.Status != nil:
			s.send("task", h.row(ctx, u.Status, true))
		}
	})
	switch {
	case ctx.Err() != nil:
	case err != nil || final == nil:
		h.opts.Log.Warn("live page: a task can no longer be followed", "task_id", id, "err", err)
		s.send("problem", problem{Error: "the task can no longer be followed"})
	default:
		s.send("end", h.row(ctx, final, true))
	}
}

// row is st with its playbook; the list leaves out set_stats output.
func (h *handler) row(ctx context.Context, st *schemas.TaskStatus, withOutput bool) row {
	rw := row{TaskStatus: *st, Playbook: h.playbook(ctx, st)}
	if !withOutput {
		rw.Output = nil
	}
	return rw
}

// playbook is the playbook task st ran, relative to PlaybookDir when it is
// in it; "" while the task is queued or when no event names it.
func (h *handler) playbook(ctx context.Context, st *schemas.TaskStatus) string {
	if st.State == schemas.StateQueued {
		return ""
	}
	if p, ok := h.playbooks.get(st.TaskID); ok {
		return p
	}
	p, err := h.src.Playbook(ctx, st.TaskID)
	if err != nil {
		h.opts.Log.Debug("live page: no playbook for a task", "task_id", st.TaskID, "err", err)
		return ""
	}
	if dir := strings.TrimRight(h.opts.PlaybookDir, `/\`); dir != "" {
		if rel, ok := strings.CutPrefix(p, dir); ok && rel != "" && strings.ContainsRune(`/\`, rune(rel[0])) {
			p = rel[1:]
		}
	}
	if p != "" {
		h.playbooks.put(st.TaskID, p)
	}
	return p
}
