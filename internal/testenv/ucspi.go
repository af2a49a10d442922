package testenv

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// TCPRules compiles tcprules text into the cdb at path with ucspi-tcp's
// tcprules (through path.tmp, so a running server sees old or new rules)
// and returns path.
func TCPRules(t testing.TB, path, text string) string {
	t.Helper()
	tcprules := Tool(t, "tcprules", "ucspi-tcp")
	cmd := exec.Command(tcprules, path, path+".tmp")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tcprules: %v\n%s", err, out)
	}
	return path
}

// TCPServer starts a tcpserver command built by the caller (for example
// "tcpserver -1 ... 127.0.0.1 0 program"; -1 makes it print its port)
// and returns the port it reports. Without cmd.Stderr set, tcpserver's
// log is shown if the test fails. tcpserver is killed when the test
// ends.
func TCPServer(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	ownLog := cmd.Stderr == nil
	if ownLog {
		cmd.Stderr = &log
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if ownLog && t.Failed() {
			t.Logf("tcpserver log:\n%s", log.String())
		}
	})
	port, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("tcpserver did not report its port: %v", err)
	}
	return strings.TrimSpace(port)
}
