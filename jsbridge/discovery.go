package jsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/ansible-worker/ansible-worker/worker"
)

// ServiceName is the name every worker registers under in the NATS micro
// framework: `nats micro ls` lists the running workers,
// `nats micro info ansible-worker` tells them apart by their metadata.
const ServiceName = "ansible-worker"

// Metadata keys of a worker's micro service.
const (
	MetaGroup       = "group"
	MetaWorkerID    = "worker_id"
	MetaPrefix      = "topic_prefix"
	MetaConcurrency = "concurrency"
)

// devVersion is the service version of a binary built without a release
// version; the micro framework wants semantic versions.
const devVersion = "0.0.0-dev"

// DiscoveryWait is how long Workers gathers the answers of the workers
// when its context has no earlier deadline.
const DiscoveryWait = 500 * time.Millisecond

// WorkerInfo is one live worker, as it answers a ping.
type WorkerInfo struct {
	// ID is the worker's worker_id.
	ID string `json:"worker_id"`
	// Group is the group whose tasks it runs.
	Group string `json:"group"`
	// Version is the worker binary's version.
	Version string `json:"version"`
	// ServiceID is the micro framework's id of its service instance.
	ServiceID string `json:"service_id"`
	// Concurrency is how many tasks it runs at most.
	Concurrency int `json:"concurrency"`
	// Stats is what it did so far; set by AllWorkers only.
	Stats *WorkerStats `json:"stats,omitempty"`
}

// WorkerStats is what a worker reports in the data of its micro stats
// (`nats micro stats ansible-worker`).
type WorkerStats struct {
	// Running is how many tasks run now.
	Running int `json:"running"`
	// Ended counts the tasks that reached each final state there.
	Ended map[string]int64 `json:"ended"`
}

// WorkerOptions is what a worker's service says of it.
type WorkerOptions struct {
	// Concurrency goes in the metadata.
	Concurrency int
	// Stats, when set, is the data of its endpoints' stats.
	Stats func() WorkerStats
}

// RegisterWorker registers worker id of names' group as an instance of the
// micro service ServiceName on nc, so clients and `nats micro ls` find it.
// version is the binary's version; the service shows it without its "v",
// or as "0.0.0-<version>" (else "0.0.0-dev") when it is not a semantic
// version. Stop the returned service when the worker stops.
func RegisterWorker(nc *nats.Conn, names Names, id, version string, opts WorkerOptions) (micro.Service, error) {
	cfg := micro.Config{
		Name:        ServiceName,
		Version:     strings.TrimPrefix(version, "v"),
		Description: "runs Ansible playbooks of group " + names.Group,
		Metadata: map[string]string{MetaGroup: names.Group, MetaWorkerID: id, MetaPrefix: names.Prefix,
			MetaConcurrency: strconv.Itoa(opts.Concurrency)},
	}
	if opts.Stats != nil {
		cfg.StatsHandler = func(*micro.Endpoint) any { return opts.Stats() }
	}
	// A development build's version ("devel-<rev>") is not semantic: as a
	// pre-release of 0.0.0 it reads as in the logs and /metrics, else it
	// is devVersion, but the worker is found all the same.
	var svc micro.Service
	var err error
	for _, v := range []string{cfg.Version, "0.0.0-" + cfg.Version, devVersion} {
		cfg.Version = v
		if svc, err = micro.AddService(nc, cfg); !errors.Is(err, micro.ErrConfigValidation) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("register worker service: %w", err)
	}
	// Found from the moment it returns: the server has its subscriptions.
	if err := nc.Flush(); err != nil {
		_ = svc.Stop()
		return nil, fmt.Errorf("register worker service: %w", err)
	}
	return svc, nil
}

// Workers pings the workers and returns those of names' group and prefix
// that answer before ctx's deadline or within DiscoveryWait, sorted by id.
// An answer is not authenticated: it serves hints, not decisions.
func Workers(ctx context.Context, nc *nats.Conn, names Names) ([]WorkerInfo, error) {
	subject, err := micro.ControlSubject(micro.PingVerb, ServiceName, "")
	if err != nil {
		return nil, fmt.Errorf("ping subject: %w", err)
	}
	out := []WorkerInfo{}
	err = gather(ctx, nc, subject, func(data []byte) {
		if w, ok := workerOf(data, names); ok {
			out = append(out, w)
		}
	})
	return sortWorkers(out), err
}

// workerOf reads a ping answer; ok is false for another group's worker or
// something that is not a worker's answer.
func workerOf(data []byte, names Names) (WorkerInfo, bool) {
	var p micro.Ping
	if err := json.Unmarshal(data, &p); err != nil || p.Name != ServiceName || p.Type != micro.PingResponseType {
		return WorkerInfo{}, false
	}
	md := p.Metadata
	if md[MetaGroup] != names.Group || (md[MetaPrefix] != "" && md[MetaPrefix] != names.Prefix) {
		return WorkerInfo{}, false
	}
	conc, _ := strconv.Atoi(md[MetaConcurrency])
	return WorkerInfo{ID: md[MetaWorkerID], Group: md[MetaGroup], Version: p.Version, ServiceID: p.ID,
		Concurrency: conc}, true
}

// AllWorkers asks every worker under prefix (of every group) for its
// stats and returns those that answer within DiscoveryWait (or before
// ctx's deadline), sorted by group and id.
func AllWorkers(ctx context.Context, nc *nats.Conn, prefix string) ([]WorkerInfo, error) {
	subject, err := micro.ControlSubject(micro.StatsVerb, ServiceName, "")
	if err != nil {
		return nil, fmt.Errorf("stats subject: %w", err)
	}
	var out []WorkerInfo
	err = gather(ctx, nc, subject, func(data []byte) {
		var st micro.Stats
		if json.Unmarshal(data, &st) != nil || st.Name != ServiceName || st.Type != micro.StatsResponseType {
			return
		}
		md := st.Metadata
		if md[MetaPrefix] != "" && md[MetaPrefix] != prefix {
			return
		}
		conc, _ := strconv.Atoi(md[MetaConcurrency])
		w := WorkerInfo{ID: md[MetaWorkerID], Group: md[MetaGroup], Version: st.Version, ServiceID: st.ID, Concurrency: conc}
		for _, e := range st.Endpoints {
			var ws WorkerStats
			if len(e.Data) > 0 && json.Unmarshal(e.Data, &ws) == nil && ws.Ended != nil {
				w.Stats = &ws
				break
			}
		}
		out = append(out, w)
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// gather sends an empty request to subject and hands every answer to fn
// until DiscoveryWait passes or ctx ends.
func gather(ctx context.Context, nc *nats.Conn, subject string, fn func([]byte)) error {
	inbox := nc.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return fmt.Errorf("request %s: %w", subject, err)
	}
	timer := time.NewTimer(DiscoveryWait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return nil
		case m := <-replies:
			fn(m.Data)
		}
	}
}

// StatusSubject is where a request for task id's status is answered by
// one worker of the group (the micro endpoint "status").
func (n Names) StatusSubject(id string) string { return n.TaskSubject() + "." + id + ".status" }

// AddStatusEndpoint adds the endpoint "status" to a worker's service: a
// request on StatusSubject(id) is answered, by one worker of the group,
// with the task's TaskStatus, or a 404 error when it has none.
func AddStatusEndpoint(svc micro.Service, names Names, store *StatusStore) error {
	return svc.AddEndpoint("status", micro.HandlerFunc(func(req micro.Request) {
		id := strings.TrimSuffix(strings.TrimPrefix(req.Subject(), names.TaskSubject()+"."), ".status")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := store.Get(ctx, names.Group, id)
		switch {
		case errors.Is(err, worker.ErrNoStatus):
			_ = req.Error("404", "no task "+id+" in group "+names.Group, nil)
		case err != nil:
			_ = req.Error("500", err.Error(), nil)
		default:
			_ = req.RespondJSON(st)
		}
	}), micro.WithEndpointSubject(names.StatusSubject("*")), micro.WithEndpointQueueGroup(names.Consumer()+"-status"))
}

func sortWorkers(ws []WorkerInfo) []WorkerInfo {
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	return ws
}
