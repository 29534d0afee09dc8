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

// send hands the job and its files (they become fds 1 and 2, then 3...)
// to the supervisor.
func (sv *supervisor) send(j job, stdout *os.File, extra []*os.File) error {
	defer sv.ctrl.Close()
	body, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	conn, err := net.FileConn(sv.ctrl)
	if err != nil {
		return fmt.Errorf("supervisor socket: %w", err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	fds := []int{int(stdout.Fd())}
	for _, f := range extra {
		fds = append(fds, int(f.Fd()))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	if _, _, err := uc.WriteMsgUnix(hdr[:], syscall.UnixRights(fds...), nil); err != nil {
		return fmt.Errorf("send job: %w", err)
	}
	if _, err := uc.Write(body); err != nil {
		return fmt.Errorf("send job: %w", err)
	}
	return nil
}

// receiveJob reads the job a waiting supervisor is given on fd ctrl. It
// returns io.EOF when the worker closed the socket without a job.
func receiveJob(ctrl int) (job, []*os.File, error) {
	var j job
	f := os.NewFile(uintptr(ctrl), "supervisor-ctrl")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return j, nil, err
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	var hdr [4]byte
	oob := make([]byte, syscall.CmsgSpace(8*4))
	n, oobn, _, _, err := uc.ReadMsgUnix(hdr[:], oob)
	if err != nil || n == 0 {
		if err == nil {
			err = io.EOF
		}
		return j, nil, err
	}
	if n < len(hdr) {
		if _, err := io.ReadFull(uc, hdr[n:]); err != nil {
			return j, nil, err
		}
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return j, nil, fmt.Errorf("job without files: %v", err)
	}
	fds, err := syscall.ParseUnixRights(&msgs[0])
	if err != nil {
		return j, nil, err
	}
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		syscall.CloseOnExec(fd)
		files[i] = os.NewFile(uintptr(fd), fmt.Sprintf("job-fd-%d", i))
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(uc, body); err != nil {
		return j, files, err
	}
	if err := json.Unmarshal(body, &j); err != nil {
		return j, files, fmt.Errorf("decode job: %w", err)
	}
	return j, files, nil
}
