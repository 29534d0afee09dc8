//go:build !unix

package runnerstream

// jobAlive tells whether the pid in dir/pid names a live process: a pid
// file is taken as a live job where processes cannot be probed.
func jobAlive(dir string) bool { return jobPID(dir) != 0 }
