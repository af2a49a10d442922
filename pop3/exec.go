package pop3

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"syscall"
)

// ExecCheckpassword is the Login of qmail-popup under tcpserver: it runs
// argv (the checkpassword program and what it runs next, e.g.
// "checkpassword qmail-pop3d Maildir") in the process environment. See
// ExecCheckpasswordEnv.
func ExecCheckpassword(argv []string) Login {
	return ExecCheckpasswordEnv(argv, nil)
}

// ExecCheckpasswordEnv runs argv with the auth data on fd 3, the
// connection on fd 0 and 1, and fd 2 pointing at the connection too, as
// qmail does. env is the chain's environment; nil means the process's
// own (a standalone listener passes each connection's, so that the
// chain sees that client's TCPREMOTEIP and rule variables). A socket
// connection is handed to the chain itself; any other (pipes under a
// wrapper) means the process's fd 0 and 1. On a TLS connection the chain
// gets a socket pair instead and the session is relayed through TLS.
func ExecCheckpasswordEnv(argv, env []string) Login {
	return func(authData []byte, conn io.ReadWriter, pending []byte) (LoginResult, error) {
		pr, pw, err := os.Pipe()
		if err != nil {
			return LoginResult{}, errors.New("unable to open pipe")
		}
		defer pr.Close()
		defer pw.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		if env != nil {
			cmd.Env = env
		}
		cmd.ExtraFiles = []*os.File{pr}
		tlsConn, isTLS := conn.(*tls.Conn)
		sock, isSocket := conn.(socketConn)
		var relayDone chan struct{}
		switch {
		case isTLS:
			child, parent, err := socketPair()
			if err != nil {
				return LoginResult{}, errors.New("unable to open pipe")
			}
			defer parent.Close()
			cmd.Stdin, cmd.Stdout, cmd.Stderr = child, child, child
			if err := cmd.Start(); err != nil {
				child.Close()
				return LoginResult{ExitCode: 1}, nil // qmail's child exits 1 when execvp fails
			}
			child.Close()
			relayDone = relay(tlsConn, parent, pending)
		case isSocket:
			f, err := sock.File()
			if err != nil {
				return LoginResult{}, errors.New("unable to duplicate the connection")
			}
			// Starting the child makes the shared socket blocking, which
			// C programs expect; our copy goes back to non-blocking so
			// the runtime poller (and its deadlines) keep working.
			defer restoreNonblock(sock)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = f, f, f
			err = cmd.Start()
			f.Close()
			if err != nil {
				return LoginResult{ExitCode: 1}, nil
			}
		default:
			// The chain is usually C programs: give them blocking
			// descriptors even if ours were made non-blocking.
			syscall.SetNonblock(0, false)
			syscall.SetNonblock(1, false)
			cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stdout
			if err := cmd.Start(); err != nil {
				return LoginResult{ExitCode: 1}, nil
			}
		}
		pr.Close()
		_, werr := pw.Write(authData)
		pw.Close()
		err = cmd.Wait()
		if relayDone != nil {
			<-relayDone
		}
		var res LoginResult
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				res.Crashed = true
			} else {
				res.ExitCode = ee.ExitCode()
			}
		} else if err != nil {
			return res, err
		}
		if werr != nil && !res.Crashed && res.ExitCode == 0 {
			return res, errors.New("unable to write pipe")
		}
		return res, nil
	}
}

// socketPair makes a connected pair of Unix stream sockets: one end for
// the child, the other wrapped as a net.Conn for the relay.
func socketPair() (child *os.File, parent net.Conn, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	child = os.NewFile(uintptr(fds[0]), "pop3-child")
	pf := os.NewFile(uintptr(fds[1]), "pop3-relay")
	parent, err = net.FileConn(pf)
	pf.Close()
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return child, parent, nil
}

// relay copies between the client's TLS connection and the child's
// socket until the child closes its end; the returned channel is closed
// then. Input the client sent early goes to the child first.
func relay(client *tls.Conn, child net.Conn, pending []byte) chan struct{} {
	done := make(chan struct{})
	go func() {
		if len(pending) > 0 {
			if _, err := child.Write(pending); err != nil {
				return
			}
		}
		io.Copy(child, client)
		if uc, ok := child.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
	}()
	go func() {
		io.Copy(client, child)
		close(done)
	}()
	return done
}

// socketConn is a connection whose descriptor can be given to a child:
// *net.TCPConn, *net.UnixConn.
type socketConn interface {
	File() (*os.File, error)
	syscall.Conn
}

// restoreNonblock puts a socket back in non-blocking mode after a child
// was started on a duplicate of it (the mode belongs to the socket, not
// to the descriptor).
func restoreNonblock(c syscall.Conn) {
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) { syscall.SetNonblock(int(fd), true) })
}
