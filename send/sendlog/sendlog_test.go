package sendlog

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	good := []string{
		"status: local 0/10 remote 0/20",
		"new msg 42",
		"info msg 42: bytes 300 from <a@b.example> qp 17 uid 1000",
		"starting delivery 1: msg 42 to local bob@h.example",
		"status: local 1/10 remote 0/20",
		"delivery 1: success: did_1+0+0/",
		"end msg 42",
		"new msg 42",
		"end msg 42",
		"status: exiting",
	}
	tests := []struct {
		name  string
		lines []string
		opt   Options
		want  string // a substring of the first problem; "" for none
	}{
		{"well formed", good, Options{}, ""},
		{"garbage", []string{"hello"}, Options{}, `does not parse: "hello"`},
		{"alert", []string{"alert: oh no! lost spawn connection! dying..."}, Options{}, "alert in log"},
		{"no result", good[:4], Options{}, "starting delivery 1 has no delivery line"},
		{"no result after a kill", good[:4], Options{Truncated: true}, ""},
		{"result without start", []string{"delivery 3: failure: x/"}, Options{}, "delivery 3 finished but was not running"},
		{"number reused", []string{"starting delivery 1: msg 2 to local a@b", "delivery 1: deferral: x/",
			"starting delivery 1: msg 2 to local a@b"}, Options{Truncated: true}, "delivery 1 started twice"},
		{"end without new", []string{"end msg 9"}, Options{}, "end msg 9 without new msg"},
		{"end of a resumed message", []string{"end msg 9"}, Options{Resumed: true}, ""},
		{"info without new", []string{"info msg 9: bytes 1 from <> qp 1 uid 0"}, Options{}, "info msg 9 without new msg"},
		{"new twice", []string{"new msg 5", "new msg 5"}, Options{}, "new msg 5 again"},
		{"end twice", []string{"new msg 5", "end msg 5", "end msg 5"}, Options{}, "end msg 5 twice"},
		{"space in an address", []string{"starting delivery 1: msg 2 to local a b@c"}, Options{Truncated: true}, "does not parse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(tc.lines, tc.opt)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Errorf("problems in a good log: %q", got)
			case tc.want != "" && (len(got) == 0 || !strings.Contains(got[0], tc.want)):
				t.Errorf("problems %q, want one with %q", got, tc.want)
			}
		})
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("status: local 0/10 remote 0/20\nnew msg 1\nend msg 1\n")
	f.Add("starting delivery 1: msg 2 to remote a@b\ndelivery 1: success: ok/\n")
	f.Add("delivery 7: report mangled, will defer\n")
	f.Fuzz(func(t *testing.T, log string) {
		lines := strings.Split(log, "\n")
		strict := Check(lines, Options{})
		loose := Check(lines, Options{Truncated: true, Resumed: true})
		// Relaxing the checks can only remove problems.
		if len(loose) > len(strict) {
			t.Errorf("relaxed check found more problems: %q vs %q", loose, strict)
		}
	})
}
