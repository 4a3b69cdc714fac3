package natsconn

import "testing"

func TestRedactURLs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://u:pw@h:4222", "nats://u:xxxxx@h:4222"},
		{"nats://tok3n@h:4222", "nats://xxxxx@h:4222"},
		{"nats://u:pw@a:1, nats://b:2", "nats://u:xxxxx@a:1,nats://b:2"},
		{"nats://u:p%zz@h", "(unparsable URL with credentials)"},
	}
	for _, tt := range tests {
		if got := redactURLs(tt.in); got != tt.want {
			t.Errorf("redactURLs(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}
