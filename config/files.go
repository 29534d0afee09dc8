package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// CheckPlaybookDir returns an error unless worker.playbook_directory is an
// existing directory. Like Validate's, its errors never contain a secret.
func (c *Config) CheckPlaybookDir() error { return c.redact(c.checkPlaybookDir()) }

func (c *Config) checkPlaybookDir() error {
	st, err := os.Stat(c.Worker.PlaybookDirectory)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("worker.playbook_directory: %s does not exist", c.Worker.PlaybookDirectory)
		}
		return fmt.Errorf("worker.playbook_directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("worker.playbook_directory: %s is not a directory", c.Worker.PlaybookDirectory)
	}
	return nil
}

// checkFile returns an error, naming key, unless name is a file that
// exists (it is not opened); nil when it is.
func checkFile(key, name string) error {
	st, err := os.Stat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %s does not exist", key, name)
	case err != nil:
		return fmt.Errorf("%s: %w", key, err)
	case st.IsDir():
		return fmt.Errorf("%s: %s is a directory", key, name)
	}
	return nil
}
