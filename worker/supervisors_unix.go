//go:build unix

package worker

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// maxMsg bounds one message on a supervisor's socket: a job carries the
// playbook's argv and environment.
const maxMsg = 16 << 20

// writeMsg sends v as a length-prefixed JSON message, with files passed
// along (SCM_RIGHTS) when there are some.
func writeMsg(uc *net.UnixConn, v any, files ...*os.File) error {
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	msg := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(body)), uint32(len(body)))
	msg = append(msg, body...)
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = syscall.UnixRights(fds...)
	}
	// The rights ride on the first byte; the rest follows in order.
	if _, _, err := uc.WriteMsgUnix(msg[:1], oob, nil); err != nil {
		return err
	}
	_, err = uc.Write(msg[1:])
	return err
}

// readMsg reads one message into v and returns the files passed with it,
// close-on-exec. It returns io.EOF when the other side closed the socket
// between messages.
func readMsg(uc *net.UnixConn, v any) ([]*os.File, error) {
	var hdr [4]byte
	oob := make([]byte, syscall.CmsgSpace(8*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(hdr[:1], oob)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, io.EOF
	}
	files, err := rights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(uc, hdr[1:]); err != nil {
		return files, fmt.Errorf("read message: %w", err)
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxMsg {
		return files, fmt.Errorf("message of %d bytes", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(uc, body); err != nil {
		return files, fmt.Errorf("read message: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return files, fmt.Errorf("decode message: %w", err)
	}
	return files, nil
}

// rights turns the descriptors of a control message into files.
func rights(oob []byte) ([]*os.File, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var files []*os.File
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			return files, fmt.Errorf("control message: %w", err)
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd)
			files = append(files, os.NewFile(uintptr(fd), fmt.Sprintf("fd-%d", fd)))
		}
	}
	return files, nil
}

// unixConn wraps a socket descriptor (the file is closed; the connection
// has its own copy).
func unixConn(f *os.File) (*net.UnixConn, error) {
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socket: not a Unix socket")
	}
	return uc, nil
}

// run sends sv a job with its files (they become fds 1 and 2, then 3...)
// and returns the playbook's pid once it started: 0 when it could not (the
// reason is on stdout, and wait returns 127).
func (sv *supervisor) run(j job, stdout *os.File, extra []*os.File) (int, error) {
	if err := writeMsg(sv.conn, j, append([]*os.File{stdout}, extra...)...); err != nil {
		return 0, fmt.Errorf("send job to supervisor: %w", err)
	}
	pid, err := readPID(sv.conn)
	if err != nil {
		return 0, fmt.Errorf("supervisor: %w", err)
	}
	return pid, nil
}

// wait returns the job's exit code: the playbook's, or 128+n when signal n
// ended it. ok is false when the supervisor ended without saying; the code
// is then the supervisor's own (-1 when a signal killed it).
func (sv *supervisor) wait() (code int, ok bool) {
	if code, ok := readExit(sv.conn); ok {
		return code, true
	}
	sv.conn.Close()
	_ = sv.cmd.Wait()
	return sv.cmd.ProcessState.ExitCode(), false
}

// readPID reads a task supervisor's first report on a job (a Go
// supervisor's or a warm process's task supervisor's): the playbook's pid,
// 0 when it could not start.
func readPID(c *net.UnixConn) (int, error) {
	var r svReply
	if _, err := readMsg(c, &r); err != nil {
		return 0, err
	}
	return r.PID, nil
}

// readExit reads its last report: the job's exit code; ok is false when
// the supervisor ended without saying.
func readExit(c *net.UnixConn) (code int, ok bool) {
	var r svReply
	if _, err := readMsg(c, &r); err != nil || r.Exit == nil {
		return 0, false
	}
	return *r.Exit, true
}
