// Package unixmsg decodes the control messages of a Unix socket: the
// descriptors (SCM_RIGHTS) and credentials (SCM_CREDENTIALS) a local
// peer sends along with its data.
package unixmsg

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Parse takes the descriptors and the sender's credentials out of the
// control messages oob. A malformed message yields what was decoded
// before it. The caller owns (and must close) every descriptor
// returned, including those it does not want.
func Parse(oob []byte) (fds []int, cred *unix.Ucred) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, nil
	}
	// Decoded here: x/sys's ParseUnixRights and ParseUnixCredentials
	// trust the lengths in the message.
	for _, m := range msgs {
		if m.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch m.Header.Type {
		case unix.SCM_RIGHTS:
			for d := m.Data; len(d) >= 4; d = d[4:] {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(d))))
			}
		case unix.SCM_CREDENTIALS:
			if len(m.Data) >= unix.SizeofUcred {
				cred = &unix.Ucred{
					Pid: int32(binary.NativeEndian.Uint32(m.Data[0:])),
					Uid: binary.NativeEndian.Uint32(m.Data[4:]),
					Gid: binary.NativeEndian.Uint32(m.Data[8:]),
				}
			}
		}
	}
	return fds, cred
}

// CloseAll closes descriptors received and not wanted.
func CloseAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
