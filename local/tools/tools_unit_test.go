package tools

import (
	"bufio"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseAddressList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{" joe@nowhere.mil\n", []string{"joe@nowhere.mil"}, true},
		{"Joe <joe@x.mil>, ann@y.org (Ann)", []string{"joe@x.mil", "ann@y.org"}, true},
		{`"Joe Q" <"joe q"@x.mil>`, []string{"joe q@x.mil"}, true},
		{"<@relay.example:joe@x.mil>", []string{"joe@x.mil"}, true},
		{"team: a@x, b@y;, c@z", []string{"a@x", "b@y", "c@z"}, true},
		{"joe @ x . mil", []string{"joe@x.mil"}, true},
		{"a@[1.2.3.4]", []string{"a@[1.2.3.4]"}, true},
		{"", nil, true},
		{"<a@b", nil, false},
		{`"unclosed`, nil, false},
		{"(unclosed comment", nil, false},
		{"a@b>", nil, false},
	}
	for _, tt := range tests {
		got, ok := ParseAddressList(tt.in)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseAddressList(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{"a@b", "Joe <joe@x>, (c) \"q\"@y", "g: a, b;", "<@r:a@b>", "[", "((a)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		addrs, ok := ParseAddressList(s)
		if !ok && addrs != nil {
			t.Fatal("addresses returned with a parse failure")
		}
		for _, a := range addrs {
			if a == "" {
				t.Fatal("empty address")
			}
		}
	})
}

func TestReadHeader(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"A: 1\nB: 2\n continued\n\nbody\n", []string{"A: 1\n", "B: 2\n continued\n"}},
		{"From x@y Mon\nA: 1\n", []string{"MBOX-Line: From x@y Mon\n", "A: 1\n"}},
		{"A: 1\nnot a header\nB: 2\n", []string{"A: 1\n"}},
		{"A : 1", []string{"A : 1\n"}},
		{"", nil},
		{"\nA: 1\n", nil},
		{"Bad Name: x\n", nil},
	}
	for _, tt := range tests {
		got, err := ReadHeader(bufio.NewReader(strings.NewReader(tt.in)), 1000)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ReadHeader(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	long := "A: " + strings.Repeat("x", 100) + "\n" + " " + strings.Repeat("y", 100) + "\nB: 1\n"
	got, _ := ReadHeader(bufio.NewReaderSize(strings.NewReader(long), 16), 20)
	if len(got) != 2 || len(got[0]) != 20 || got[1] != "B: 1\n" {
		t.Errorf("bounded ReadHeader = %q", got)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add("A: 1\n b\nFrom x\n\nbody")
	f.Add("From \n")
	f.Fuzz(func(t *testing.T, s string) {
		fields, err := ReadHeader(bufio.NewReaderSize(strings.NewReader(s), 16), 64)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fields {
			if len(f) > 64 {
				t.Fatalf("field of %d bytes", len(f))
			}
		}
	})
}

func TestHeaderName(t *testing.T) {
	for in, want := range map[string]string{
		"Message-ID: <x>\n":                    "message-id",
		"message-id \t: x":                     "message-id",
		"Notice-Requested-Upon-Delivery-To: a": "notice-requested-upon-delivery-to",
		"no colon":                             "",
	} {
		if got := HeaderName(in); got != want {
			t.Errorf("HeaderName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDateLine(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 3, 5, 4, 6, 9, 0, time.UTC), "Date: 5 Mar 2026 04:06:09 +0000\n"},
		{time.Date(2026, 11, 22, 23, 59, 59, 0, time.FixedZone("", -(5*3600+30*60))), "Date: 22 Nov 2026 23:59:59 -0530\n"},
		{time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+45*60)), "Date: 1 Jan 2026 00:00:00 +0145\n"},
	}
	for _, tt := range tests {
		if got := DateLine(tt.t); got != tt.want {
			t.Errorf("DateLine(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestFromLine(t *testing.T) {
	when := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)
	for in, want := range map[string]string{
		"Return-Path: <a b@c>\nX: y\n": "From a-b@c Tue Feb 03 04:05:06 2026\n",
		"Return-Path: <>\n":            "From MAILER-DAEMON Tue Feb 03 04:05:06 2026\n",
		"Subject: x\n":                 "From XXX Tue Feb 03 04:05:06 2026\n",
		"Return-Path: <a@b>":           "From XXX Tue Feb 03 04:05:06 2026\n",
	} {
		if got := fromLine([]byte(in), when); got != want {
			t.Errorf("fromLine(%q) = %q, want %q", in, got, want)
		}
	}
}
