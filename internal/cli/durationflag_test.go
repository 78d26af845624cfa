package cli

import (
	"strings"
	"testing"
	"time"
)

// "0s" is a duration: refusing it as "neither a number of seconds nor a
// duration" sent the user looking for a syntax error.
func TestDurationFlagSaysWhatIsWrong(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "120", want: 2 * time.Minute},
		{in: "90s", want: 90 * time.Second},
		{in: "0s", err: `"0s" must be a positive number of seconds or a duration such as 2m`},
		{in: "-1m", err: `"-1m" must be a positive`},
		{in: "0", err: `"0" must be a positive`},
		{in: "soon", err: `"soon" is neither a number of seconds (120) nor a duration (2m, 90s)`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var d time.Duration
			err := durationValue{&d}.Set(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || d != tt.want {
				t.Fatalf("got %v, %v; want %v", d, err, tt.want)
			}
		})
	}
}
