package main

import (
	"log/slog"
	"sync/atomic"

	"github.com/urfave/cli/v2"

	"github.com/ansible-worker/ansible-worker/config"
)

// jobsHolder keeps the named jobs of worker.jobs_file; reload reads the
// file again (SIGHUP) and keeps the jobs it had when the file is wrong.
type jobsHolder struct {
	jobs atomic.Pointer[config.Jobs]
	cfg  *config.Config
	log  *slog.Logger
}

// loadJobs reads the jobs file; a bad one stops the command with every
// problem.
func loadJobs(cfg *config.Config, log *slog.Logger) (*jobsHolder, error) {
	jobs, err := cfg.LoadJobs()
	if err != nil {
		return nil, cli.Exit(err.Error(), exitUsage)
	}
	h := &jobsHolder{cfg: cfg, log: log}
	h.jobs.Store(&jobs)
	if cfg.Worker.JobsFile != "" {
		log.Info("named jobs loaded", "jobs_file", cfg.Worker.JobsFile, "jobs", len(jobs))
	}
	return h, nil
}

// get returns the jobs as they are now.
func (h *jobsHolder) get() config.Jobs { return *h.jobs.Load() }

// reload reads the jobs file again. Running tasks keep the job they
// started with.
func (h *jobsHolder) reload() {
	if h.cfg.Worker.JobsFile == "" {
		return
	}
	jobs, err := h.cfg.LoadJobs()
	if err != nil {
		h.log.Error("jobs file not reloaded: the jobs stay as they were", "jobs_file", h.cfg.Worker.JobsFile, "err", err)
		return
	}
	h.jobs.Store(&jobs)
	h.log.Info("jobs file reloaded", "jobs_file", h.cfg.Worker.JobsFile, "jobs", len(jobs))
}
