package admin

import (
	"log/syslog"
	"strings"
	"testing"
	"time"
)

type logged struct {
	pri syslog.Priority
	msg string
}

func splog(t *testing.T, input string) []logged {
	t.Helper()
	var got []logged
	now := time.Unix(1700000000, 42000) // 42 µs
	err := Splogger(strings.NewReader(input), func(p syslog.Priority, m string) error {
		got = append(got, logged{p, m})
		return nil
	}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSplogger(t *testing.T) {
	const st = "1700000000.000042"
	a799, a800, a1000 := strings.Repeat("a", 799), strings.Repeat("a", 800), strings.Repeat("a", 1000)
	tests := []struct {
		name, in string
		want     []logged
	}{
		{"info", "status: local 0/10\n", []logged{{syslog.LOG_INFO, st + " status: local 0/10"}}},
		{"warning", "warning: trouble\n", []logged{{syslog.LOG_WARNING, st + " warning: trouble"}}},
		{"alert", "alert: cannot start\n", []logged{{syslog.LOG_ALERT, st + " alert: cannot start"}}},
		{"prefix not at start", " warning: x\n", []logged{{syslog.LOG_INFO, st + "  warning: x"}}},
		{"blank lines", "\n\nx\n\n", []logged{{syslog.LOG_INFO, st + " x"}}},
		{"unprintable", "a\tb\x00c\x7fd\xffe\n", []logged{{syslog.LOG_INFO, st + " a?b?c?d?e"}}},
		{"799 fits", a799 + "\n", []logged{{syslog.LOG_INFO, st + " " + a799}}},
		{"800 folds", a800 + "\n", []logged{{syslog.LOG_INFO, st + " " + a799}, {syslog.LOG_INFO, st + "+a"}}},
		{"fold keeps priority", "warning:" + a1000 + "\nnext\n", []logged{
			{syslog.LOG_WARNING, st + " warning:" + a1000[:791]},
			{syslog.LOG_WARNING, st + "+" + a1000[791:]},
			{syslog.LOG_INFO, st + " next"},
		}},
		{"last line without newline", "x\ny", []logged{{syslog.LOG_INFO, st + " x"}, {syslog.LOG_INFO, st + " y"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splog(t, tt.in)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d messages %v, want %v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("message %d: %v %q, want %v %q", i, got[i].pri, got[i].msg, tt.want[i].pri, tt.want[i].msg)
				}
			}
		})
	}
}

func TestSploggerArgs(t *testing.T) {
	tests := []struct {
		args []string
		tag  string
		fac  syslog.Priority
	}{
		{nil, "splogger", syslog.LOG_MAIL},
		{[]string{"qmail"}, "qmail", syslog.LOG_MAIL},
		{[]string{"qmail", "16"}, "qmail", syslog.LOG_LOCAL0},
		{[]string{"qmail", "x"}, "qmail", syslog.LOG_KERN},
		{[]string{"qmail", "3daemon"}, "qmail", syslog.LOG_DAEMON},
	}
	for _, tt := range tests {
		tag, fac := SploggerArgs(tt.args)
		if tag != tt.tag || fac != tt.fac {
			t.Errorf("SploggerArgs(%q) = %q %v, want %q %v", tt.args, tag, fac, tt.tag, tt.fac)
		}
	}
}

func FuzzSplogger(f *testing.F) {
	f.Add("warning: x\n\n" + strings.Repeat("b", 1700) + "\nalert:\x00\n")
	f.Add("no newline")
	f.Fuzz(func(t *testing.T, in string) {
		now := time.Unix(5, 0)
		n := 0
		err := Splogger(strings.NewReader(in), func(p syslog.Priority, m string) error {
			n++
			stamp, rest := m[:len("5.000000")], m[len("5.000000"):]
			if stamp != "5.000000" || (rest[0] != ' ' && rest[0] != '+') {
				t.Fatalf("bad prefix in %q", m)
			}
			if len(rest)-1 > SploggerFold-1 || len(rest) < 2 {
				t.Fatalf("piece of %d bytes", len(rest)-1)
			}
			for i := 0; i < len(rest); i++ {
				if rest[i] < 32 || rest[i] > 126 {
					t.Fatalf("unprintable in %q", m)
				}
			}
			return nil
		}, func() time.Time { return now })
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(strings.Map(func(r rune) rune {
			if r == '\n' {
				return ' '
			}
			return 'x'
		}, in)) != "" && n == 0 {
			t.Fatalf("nothing logged for %q", in)
		}
	})
}
