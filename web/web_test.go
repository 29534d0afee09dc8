package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
	"github.com/ansible-worker/ansible-worker/web"
)

// page is the live page of group production over a real embedded
// nats-server with the group's streams and bucket.
type page struct {
	url    string
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	active *atomic.Int32 // requests being served
	stop   context.CancelFunc
}

func newPage(t *testing.T, opts web.Options) *page {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.NATS.Embedded.Enabled = true
	cfg.NATS.Embedded.Listen = "127.0.0.1:-1"
	cfg.NATS.Embedded.StoreDir = t.TempDir()
	emb, err := jsbridge.StartEmbedded(cfg, nil)
	require.NoError(t, err)
	t.Cleanup(emb.Shutdown)
	nc, err := nats.Connect(emb.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := t.Context()
	names := jsbridge.Names{Prefix: "ansible", Group: "production"}
	assets, err := jsbridge.Provision(ctx, js, jsbridge.ProvisionConfig{Names: names, Replicas: 1}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	views, err := jsbridge.NewTaskViews(ctx, js, names)
	require.NoError(t, err)
	sctx, stop := context.WithCancel(ctx)
	h, err := web.New(sctx, views, opts)
	require.NoError(t, err)
	p := &page{js: js, kv: assets.Status, active: &atomic.Int32{}, stop: stop}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.active.Add(1)
		defer p.active.Add(-1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(stop)
	p.url = srv.URL
	return p
}

// put stores a status of task id, created at minute min of the day.
func (p *page) put(t *testing.T, id string, state schemas.State, minute int) {
	t.Helper()
	st := schemas.TaskStatus{TaskID: id, State: state, Group: "production", Worker: "w1", Attempt: 1,
		CreatedAt: schemas.NewTime(time.Date(2026, 1, 2, 3, minute, 0, 0, time.UTC))}
	b, err := json.Marshal(st)
	require.NoError(t, err)
	_, err = p.kv.Put(t.Context(), "production."+id, b)
	require.NoError(t, err)
}

// event publishes a runner event of task id to the events stream.
func (p *page) event(t *testing.T, id string, counter int, stdout, playbook string) {
	t.Helper()
	ev := schemas.Event{UUID: id + "-" + string(rune('a'+counter)), Counter: counter, Stdout: stdout, RunnerIdent: id, Event: "runner_on_ok",
		EventData: json.RawMessage(`{"playbook":` + string(must(json.Marshal(playbook))) + `}`)}
	_, err := p.js.Publish(t.Context(), jsbridge.EventSubject("host-1", id), must(json.Marshal(ev)))
	require.NoError(t, err)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// get returns the response to a GET of path.
func (p *page) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(p.url + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// sse is an open event stream; next returns its events one by one and
// fails on anything that is not server-sent events framing.
type sse struct {
	r      *bufio.Reader
	cancel context.CancelFunc
}

type sseEvent struct {
	name string
	data map[string]any
}

func (p *page) open(t *testing.T, path string) *sse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url+path, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { cancel(); _ = resp.Body.Close() })
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))
	return &sse{r: bufio.NewReader(resp.Body), cancel: cancel}
}

func (s *sse) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		require.NoError(t, err)
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "" && ev.name != "":
			require.NotNil(t, ev.data, "event %s without data", ev.name)
			return ev
		case line == "", strings.HasPrefix(line, ": "), strings.HasPrefix(line, "retry: "):
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			require.Nil(t, ev.data, "one data line per event")
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data))
		default:
			t.Fatalf("not server-sent events framing: %q", line)
		}
	}
}

// The pages and files carry the headers that keep data from running as
// code; ids that are not valid or not known give 404, never a page or a
// stream.
func TestPagesHeadersAndUnknownTasks(t *testing.T) {
	t.Parallel()
	p := newPage(t, web.Options{})
	p.put(t, "known-1", schemas.StateQueued, 1)

	for path, want := range map[string]string{
		"/":                 "text/html; charset=utf-8",
		"/tasks/known-1":    "text/html; charset=utf-8",
		"/static/app.js":    "text/javascript; charset=utf-8",
		"/static/style.css": "text/css; charset=utf-8",
	} {
		resp, body := p.get(t, path)
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		require.Equal(t, want, resp.Header.Get("Content-Type"), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "default-src 'self'", path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		require.NotEmpty(t, body)
	}
	_, js := p.get(t, "/static/app.js")
	for _, sink := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		require.NotContains(t, js, sink, "the page sets submitter data as text only")
	}

	tooLong := strings.Repeat("x", schemas.MaxIDLength+1)
	for _, id := range []string{"nope", "bad.id", "a%20b", "%3Cscript%3E", tooLong} {
		resp, body := p.get(t, "/tasks/"+id)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, id)
		require.Contains(t, body, "Unknown task", id)
		require.NotContains(t, body, "<script", id)
		resp, _ = p.get(t, "/events/tasks/"+id)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, id)
	}
}

// The list starts with the newest tasks, newest first, says how many there
// are, then adds each status as it is written; a client that goes away
// ends its stream.
func TestTaskListStream(t *testing.T) {
	t.Parallel()
	p := newPage(t, web.Options{Group: "production", MaxTasks: 2})
	p.put(t, "old", schemas.StateSuccess, 1)
	p.put(t, "newest", schemas.StateQueued, 3)
	p.put(t, "middle", schemas.StateRunning, 2)

	s := p.open(t, "/events/tasks")
	for _, id := range []string{"newest", "middle"} {
		ev := s.next(t)
		require.Equal(t, "task", ev.name)
		require.Equal(t, id, ev.data["task_id"])
	}
	ev := s.next(t)
	require.Equal(t, "ready", ev.name)
	require.Equal(t, map[string]any{"group": "production", "total": 3.0, "shown": 2.0}, ev.data)

	p.put(t, "middle", schemas.StateSuccess, 2)
	ev = s.next(t)
	require.Equal(t, "task", ev.name)
	require.Equal(t, "middle", ev.data["task_id"])
	require.Equal(t, "success", ev.data["state"])

	s.cancel()
	require.Eventually(t, func() bool { return p.active.Load() == 0 }, 5*time.Second, 20*time.Millisecond,
		"the stream's handler ends when its client goes away")
}

// A task's stream replays its stored output (ANSI colours removed), goes on
// with the new output as it is published, and ends with the final status,
// which names the playbook relative to the playbook directory. Stopping
// the page's server ends an open stream.
func TestTaskStream(t *testing.T) {
	t.Parallel()
	p := newPage(t, web.Options{PlaybookDir: "/srv/playbooks"})
	p.put(t, "run-1", schemas.StateRunning, 1)
	p.event(t, "run-1", 1, "\x1b[0;32mok: [localhost]\x1b[0m", "/srv/playbooks/site.yml")

	s := p.open(t, "/events/tasks/run-1")
	outputs, statuses := []string{}, []string{}
	var end map[string]any
	published := false
	for end == nil {
		ev := s.next(t)
		switch ev.name {
		case "output":
			outputs = append(outputs, ev.data["stdout"].(string))
		case "task":
			statuses = append(statuses, ev.data["state"].(string))
		case "end":
			end = ev.data
		}
		if len(outputs) == 1 && !published {
			// The replay is done: the rest arrives live.
			published = true
			p.event(t, "run-1", 2, "\nPLAY RECAP\nlocalhost : ok=1", "/srv/playbooks/site.yml")
			_, err := p.js.Publish(t.Context(), jsbridge.RunnerStatusSubject("host-1", "run-1"), []byte(`{"status":"successful","runner_ident":"run-1"}`))
			require.NoError(t, err)
			p.put(t, "run-1", schemas.StateSuccess, 1)
		}
	}
	require.Equal(t, []string{"ok: [localhost]", "\nPLAY RECAP\nlocalhost : ok=1"}, outputs)
	require.Contains(t, statuses, "running")
	require.Equal(t, "success", end["state"])
	require.Equal(t, "site.yml", end["playbook"])

	// A follower of a running task stops with the server.
	p.put(t, "run-2", schemas.StateRunning, 2)
	s = p.open(t, "/events/tasks/run-2")
	require.Equal(t, "task", s.next(t).name)
	p.stop()
	_, err := io.ReadAll(s.r)
	require.NoError(t, err, "the stream ends cleanly")
	require.Eventually(t, func() bool { return p.active.Load() == 0 }, 5*time.Second, 20*time.Millisecond)
}
