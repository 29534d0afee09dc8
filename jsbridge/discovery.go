package jsbridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// ServiceName is the name every worker registers under in the NATS micro
// framework: `nats micro ls` lists the running workers,
// `nats micro info ansible-worker` tells them apart by their metadata.
const ServiceName = "ansible-worker"

// Metadata keys of a worker's micro service.
const (
	MetaGroup    = "group"
	MetaWorkerID = "worker_id"
	MetaPrefix   = "topic_prefix"
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
}

// RegisterWorker registers worker id of names' group as an instance of the
// micro service ServiceName on nc, so clients and `nats micro ls` find it.
// version is the binary's version; the service shows it without its "v",
// or "0.0.0-dev" when it is not a semantic version. Stop the returned
// service when the worker stops.
func RegisterWorker(nc *nats.Conn, names Names, id, version string) (micro.Service, error) {
	cfg := micro.Config{
		Name:        ServiceName,
		Version:     strings.TrimPrefix(version, "v"),
		Description: "runs Ansible playbooks of group " + names.Group,
		Metadata:    map[string]string{MetaGroup: names.Group, MetaWorkerID: id, MetaPrefix: names.Prefix},
	}
	svc, err := micro.AddService(nc, cfg)
	if errors.Is(err, micro.ErrConfigValidation) && cfg.Version != devVersion {
		// A development build's version: still be found.
		cfg.Version = devVersion
		svc, err = micro.AddService(nc, cfg)
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
	inbox := nc.NewRespInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", inbox, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("ping %s: %w", subject, err)
	}
	timer := time.NewTimer(DiscoveryWait)
	defer timer.Stop()
	out := []WorkerInfo{}
	for {
		select {
		case <-ctx.Done():
			return sortWorkers(out), nil
		case <-timer.C:
			return sortWorkers(out), nil
		case m := <-replies:
			if w, ok := workerOf(m.Data, names); ok {
				out = append(out, w)
			}
		}
	}
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
	return WorkerInfo{ID: md[MetaWorkerID], Group: md[MetaGroup], Version: p.Version, ServiceID: p.ID}, true
}

func sortWorkers(ws []WorkerInfo) []WorkerInfo {
	sort.Slice(ws, func(i, j int) bool { return ws[i].ID < ws[j].ID })
	return ws
}
