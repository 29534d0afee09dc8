//go:build !linux

package bench

import (
	"context"
	"errors"
	"io"
)

// Run says the suite needs Linux: it reads /proc for CPU and memory.
func Run(context.Context, Options, io.Writer) error {
	return errors.New("the benchmark suite runs on Linux only (it reads /proc)")
}
