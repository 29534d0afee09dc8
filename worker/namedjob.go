package worker

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ansible-worker/ansible-worker/config"
	"github.com/ansible-worker/ansible-worker/schemas"
)

// named is what a run knows of a named-job request (seed 003's form, or a
// task with "job").
type named struct {
	jobName, requestID string
	format             schemas.RequestFormat
	job                *config.Job // nil until checkJob found it
	resp               *responder
}

// namedOf returns the named-job request of a parsed request, or nil.
func namedOf(pr schemas.Request) *named {
	switch {
	case pr.Named != nil:
		return &named{jobName: pr.Named.JobName, requestID: pr.Named.RequestID, format: pr.Format}
	case pr.Task.Job != "":
		return &named{jobName: pr.Task.Job, requestID: pr.Task.TaskID, format: pr.Format}
	}
	return nil
}

// checkRequest applies what the group runs: named jobs from its jobs
// file, raw playbooks unless allow_playbooks is false.
func (r *run) checkRequest() error {
	if r.named == nil {
		if r.w.cfg.PlaybooksOff && r.req.RunnerJob == nil {
			return &schemas.InvalidTaskError{Problems: []string{
				"playbook: this group runs named jobs only (worker.allow_playbooks: false): name a job of its jobs file"}}
		}
		return nil
	}
	var jobs config.Jobs
	if r.w.cfg.Jobs != nil {
		jobs = r.w.cfg.Jobs()
	}
	job, ok := jobs[r.named.jobName]
	if !ok {
		known := slices.Sorted(maps.Keys(jobs))
		return &schemas.InvalidTaskError{Problems: []string{fmt.Sprintf("job %q is not in the worker's jobs file (jobs: %s)",
			r.named.jobName, strings.Join(known, ", "))}}
	}
	if err := job.Parameters.Check(r.req.Parameters); err != nil {
		return &schemas.InvalidTaskError{Problems: []string{err.Error()}}
	}
	r.named.job = job
	return nil
}

// resolveJob checks the job's playbooks and inventory, as a task's.
func (w *Worker) resolveJob(job *config.Job) (Resolved, error) {
	var res Resolved
	for _, pb := range job.Playbooks {
		dir, real, err := resolveReal(w.cfg.PlaybookDir, pb, "playbook")
		if err != nil {
			return res, fmt.Errorf("job %s: %w", job.Name, err)
		}
		res.Dir = dir
		res.Playbooks = append(res.Playbooks, real)
	}
	res.Playbook = res.Playbooks[0]
	switch inv := job.Inventory; {
	case inv == "" || strings.HasSuffix(inv, ","):
		res.Inventory = inv
	default:
		_, real, err := resolveReal(w.cfg.PlaybookDir, inv, "inventory")
		if err != nil {
			return res, fmt.Errorf("job %s: %w", job.Name, err)
		}
		res.Inventory = real
	}
	return res, nil
}

// writeJobVars writes the job's own extra vars (the operator's: templates
// in them work) and the request's, with its parameters, as data.
func (r *run) writeJobVars(ws *workspace) error {
	job := r.named.job
	if len(job.ExtraVars) > 0 {
		b, err := yaml.Marshal(job.ExtraVars)
		if err != nil {
			return fmt.Errorf("job %s: extra_vars: %w", job.Name, err)
		}
		ws.jobVarsFile = filepath.Join(ws.scratch, "job_vars.yml")
		if err := os.WriteFile(ws.jobVarsFile, b, 0o600); err != nil {
			return fmt.Errorf("write job vars: %w", err)
		}
	}
	vars := maps.Clone(r.req.ExtraVars)
	if r.req.Parameters != nil {
		if vars == nil {
			vars = map[string]any{}
		}
		vars["parameters"] = r.req.Parameters
	}
	if len(vars) == 0 {
		return nil
	}
	ws.varsFile = filepath.Join(ws.scratch, "extra_vars.yml")
	return WriteExtraVars(ws.varsFile, vars)
}

// responseFlush is how often output lines go out as one "working"
// response, and responseMaxBytes bounds one.
const (
	responseFlush    = 500 * time.Millisecond
	responseMaxBytes = 64 << 10
)

// responder answers one named-job request: started, the output in batches
// (working), then the result.
type responder struct {
	r     *run
	mu    sync.Mutex
	lines []string
	size  int
	extra int    // lines left out of the current batch
	recap string // the last PLAY RECAP
	n     int    // responses sent
	stop  chan struct{}
	done  chan struct{}
}

// respond stores one response of the run's request.
func (r *run) respond(result, message string) {
	if r.named == nil {
		return
	}
	seq := 0
	if p := r.named.resp; p != nil {
		p.mu.Lock()
		p.n++
		seq = p.n
		p.mu.Unlock()
	}
	id := fmt.Sprintf("%d-%d-%d-%s", r.d.Seq, r.d.Attempt, seq, result)
	r.w.respondTo(r.life, r.named, id, result, message)
}

// respondTo stores one response to n under the message id id; a failure
// is logged: the status and the events still say how the task went.
func (w *Worker) respondTo(ctx context.Context, n *named, id, result, message string) {
	if n == nil || w.ports.Responses == nil {
		return
	}
	data, err := schemas.JobResponse{JobName: n.jobName, RequestID: n.requestID, Result: result, Message: message}.Encode(n.format)
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err = w.ports.Responses.Respond(ctx, id, data, n.format)
	}
	if err != nil {
		w.log.Error("response lost", "request_id", n.requestID, "result", result, "err", err)
	}
}

// startResponses sends "started" and batches the output from now on.
func (r *run) startResponses(ws *workspace) func() {
	if r.named == nil {
		return func() {}
	}
	resp := &responder{r: r, stop: make(chan struct{}), done: make(chan struct{})}
	r.named.resp = resp
	r.respond(schemas.ResultStarted, fmt.Sprintf("job %s started on worker %s: %s", r.named.jobName, r.w.cfg.WorkerID,
		strings.Join(r.named.job.Playbooks, ", ")))
	go resp.loop()
	return func() {
		close(resp.stop)
		<-resp.done
	}
}

func (p *responder) loop() {
	defer close(p.done)
	tick := time.NewTicker(responseFlush)
	defer tick.Stop()
	for {
		select {
		case <-p.stop:
			p.flush()
			return
		case <-tick.C:
			p.flush()
		}
	}
}

// line adds one event's output to the batch.
func (p *responder) line(ev *schemas.Event) {
	text := strings.TrimRight(StripANSI(ev.Stdout), "\r\n")
	if text == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ev.Event == "playbook_on_stats" {
		p.recap = strings.TrimSpace(text)
	}
	if p.size+len(text) > responseMaxBytes {
		p.extra += strings.Count(text, "\n") + 1
		return
	}
	p.lines = append(p.lines, text)
	p.size += len(text) + 1
}

func (p *responder) flush() {
	p.mu.Lock()
	lines, extra := p.lines, p.extra
	p.lines, p.size, p.extra = nil, 0, 0
	p.mu.Unlock()
	if len(lines) == 0 && extra == 0 {
		return
	}
	msg := strings.Join(lines, "\n")
	if extra > 0 {
		msg += fmt.Sprintf("\n(%d more lines: see the task's runner events)", extra)
	}
	p.r.respond(schemas.ResultWorking, msg)
}

// respondFinal answers with the task's result: success with the recap, or
// failure with what went wrong (and the recap when the playbooks ran).
func (r *run) respondFinal(state schemas.State, message string) {
	if r.named == nil {
		return
	}
	recap := ""
	if p := r.named.resp; p != nil {
		p.mu.Lock()
		recap = p.recap
		p.mu.Unlock()
	}
	result := schemas.ResultFailure
	if state == schemas.StateSuccess {
		result = schemas.ResultSuccess
		message = fmt.Sprintf("job %s succeeded", r.named.jobName)
	} else if message == "" {
		message = fmt.Sprintf("job %s ended %s", r.named.jobName, state)
	}
	if recap != "" {
		message += "\n" + recap
	}
	r.respond(result, message)
}
