//go:build linux

package bench

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	// The command name holds a space and a ')', which is why the fields
	// are counted from the last ')'.
	line := "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 150 50 7 3 20 0 1 0 100 0 0"
	got, err := parseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if want := 210 * clockTick; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	if _, err := parseStatCPU("42 (x) S 1"); err == nil {
		t.Error("a short line parsed")
	}
}

func TestOwnProcess(t *testing.T) {
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	rss, err := procRSS(os.Getpid())
	if err != nil || rss <= 0 {
		t.Fatalf("procRSS = %d, %v", rss, err)
	}
}
