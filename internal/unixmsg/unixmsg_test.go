package unixmsg

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParse: any control-message bytes give descriptors and
// credentials or nothing, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(unix.UnixRights(5, 6))
	f.Add(append(unix.UnixRights(7, 8), unix.UnixCredentials(&unix.Ucred{Pid: 1, Uid: 2, Gid: 3})...))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, oob []byte) {
		fds, cred := Parse(oob)
		if len(fds) > len(oob)/4 {
			t.Fatalf("%d descriptors from %d bytes", len(fds), len(oob))
		}
		_ = cred
	})
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		oob     []byte
		fds     []int
		uid     uint32
		hasCred bool
	}{
		{"rights and credentials", append(unix.UnixRights(7, 8), unix.UnixCredentials(&unix.Ucred{Pid: 1, Uid: 992, Gid: 3})...), []int{7, 8}, 992, true},
		{"rights only", unix.UnixRights(9, 10), []int{9, 10}, 0, false},
		{"credentials only", unix.UnixCredentials(&unix.Ucred{Uid: 5}), nil, 5, true},
		{"nothing", nil, nil, 0, false},
		{"garbage", []byte{1, 2, 3}, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fds, cred := Parse(tt.oob)
			if len(fds) != len(tt.fds) {
				t.Fatalf("fds %v, want %v", fds, tt.fds)
			}
			for i := range fds {
				if fds[i] != tt.fds[i] {
					t.Errorf("fds %v, want %v", fds, tt.fds)
				}
			}
			if (cred != nil) != tt.hasCred || (cred != nil && cred.Uid != tt.uid) {
				t.Errorf("cred %+v", cred)
			}
		})
	}
}
