// Package web serves the live page of a worker group: the group's tasks,
// newest first, and a page per task with its output, both kept up to date
// with server-sent events. It only reads (statuses from the status bucket,
// events from the events stream) through a Source; the page's HTML, script
// and style sheet are embedded in the binary.
package web

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/ansible-worker/ansible-worker/jsbridge"
	"github.com/ansible-worker/ansible-worker/schemas"
)

//go:embed static
var staticFiles embed.FS

// Source is what the page reads of one group. jsbridge.TaskViews is one.
type Source interface {
	// WatchStatuses calls fn with the latest status of every task, then
	// with nil, then with each new status, until ctx ends or fn fails.
	WatchStatuses(ctx context.Context, fn func(*schemas.TaskStatus) error) error
	// Status returns the latest status of task id, nil when there is none.
	Status(ctx context.Context, id string) (*schemas.TaskStatus, error)
	// Follow calls fn with the task's stored events, then its new events
	// and statuses, until it reaches a final state; it returns that status.
	Follow(ctx context.Context, id string, fn func(jsbridge.Update)) (*schemas.TaskStatus, error)
	// Playbook returns the playbook the task ran, "" when none is known.
	Playbook(ctx context.Context, id string) (string, error)
}

// Options tune the page. The zero value works.
type Options struct {
	// Group is the worker group shown.
	Group string
	// PlaybookDir is cut from the front of the playbook paths shown.
	PlaybookDir string
	// MaxTasks is how many of the newest tasks the list starts with; tasks
	// written later are all added. Default 200.
	MaxTasks int
	// KeepAlive is how often an idle event stream sends a comment, so that
	// proxies keep it open. Default 20 seconds.
	KeepAlive time.Duration
	// Log receives the errors of the event streams. Default: discarded.
	Log *slog.Logger
}

// handler serves the page; its event streams end with ctx.
type handler struct {
	ctx       context.Context
	src       Source
	opts      Options
	pages     map[string][]byte
	playbooks *playbookCache
}

// New returns the page's handler: "/", "/tasks/{id}", "/static/…" and the
// event streams "/events/tasks" and "/events/tasks/{id}". The event streams
// end when their client goes away or when ctx ends (the server stops).
func New(ctx context.Context, src Source, opts Options) (http.Handler, error) {
	if opts.MaxTasks <= 0 {
		opts.MaxTasks = 200
	}
	if opts.KeepAlive <= 0 {
		opts.KeepAlive = 20 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	h := &handler{ctx: ctx, src: src, opts: opts, pages: map[string][]byte{}, playbooks: newPlaybookCache(4096)}
	for _, name := range []string{"index.html", "task.html", "unknown.html"} {
		b, err := staticFiles.ReadFile("static/" + name)
		if err != nil {
			return nil, fmt.Errorf("embedded page %s: %w", name, err)
		}
		h.pages[name] = b
	}
	assets, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, fmt.Errorf("embedded files: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { h.page(w, http.StatusOK, "index.html") })
	mux.HandleFunc("GET /tasks/{id}", h.taskPage)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(assets)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /events/tasks", h.tasksEvents)
	mux.HandleFunc("GET /events/tasks/{id}", h.taskEvents)
	return secure(mux), nil
}

// secure adds the headers that keep the page's data data: nothing but the
// page's own files may run or load, nothing is sniffed into another type,
// and the page is never framed.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; frame-ancestors 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		next.ServeHTTP(w, r)
	})
}

// page writes the embedded HTML page name with status code.
func (h *handler) page(w http.ResponseWriter, code int, name string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(h.pages[name])
}

// taskPage serves the page of one task, or says the task is unknown (404)
// when the id is not valid or the group has no status for it.
func (h *handler) taskPage(w http.ResponseWriter, r *http.Request) {
	_, code := h.lookup(r.Context(), r.PathValue("id"))
	switch code {
	case http.StatusOK:
		h.page(w, code, "task.html")
	case http.StatusNotFound:
		h.page(w, code, "unknown.html")
	default:
		http.Error(w, "the task's status cannot be read now: try again later", code)
	}
}

// lookup returns the status of task id and 200, or the HTTP status that
// says why there is none: 404 (not a valid id, or unknown) or 503.
func (h *handler) lookup(ctx context.Context, id string) (*schemas.TaskStatus, int) {
	if !schemas.ValidID(id) {
		return nil, http.StatusNotFound
	}
	st, err := h.src.Status(ctx, id)
	if err != nil {
		h.opts.Log.Warn("live page: cannot read a task status", "task_id", id, "err", err)
		return nil, http.StatusServiceUnavailable
	}
	if st == nil {
		return nil, http.StatusNotFound
	}
	return st, http.StatusOK
}

// playbookCache remembers the playbook of the tasks already looked up, so
// the list reads each task's events once. Full, it starts over.
type playbookCache struct {
	mu  sync.Mutex
	max int
	m   map[string]string
}

func newPlaybookCache(maxEntries int) *playbookCache {
	return &playbookCache{max: maxEntries, m: map[string]string{}}
}

func (c *playbookCache) get(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[id]
	return p, ok
}

func (c *playbookCache) put(id, playbook string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[id] = playbook
}
