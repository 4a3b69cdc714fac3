package driver

import "testing"

func TestParseReplyToken(t *testing.T) {
	const prefix = "_INBOX.abc."
	for _, tc := range []struct {
		subj   string
		i, gen uint32
		ok     bool
	}{
		{prefix + "0.0", 0, 0, true},
		{prefix + "32767.4294967295", 32767, 4294967295, true},
		{prefix + "1.4294967296", 0, 0, false},
		{prefix + "1", 0, 0, false},
		{prefix + "1.", 0, 0, false},
		{prefix + ".1", 0, 0, false},
		{prefix + "1.2.3", 0, 0, false},
		{prefix + "a.2", 0, 0, false},
		{prefix, 0, 0, false},
	} {
		i, gen, ok := parseReplyToken(tc.subj, len(prefix))
		if ok != tc.ok || i != tc.i || gen != tc.gen {
			t.Errorf("parseReplyToken(%q) = %d, %d, %v; want %d, %d, %v", tc.subj, i, gen, ok, tc.i, tc.gen, tc.ok)
		}
	}
}
