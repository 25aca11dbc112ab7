package reading

import (
	"fmt"
	"strings"
)

// ValidSegment reports whether s is a valid origin segment: [a-z0-9][a-z0-9-]*, at most 64 bytes.
func ValidSegment(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Origin joins site, gateway and stream into "{site}/{gateway}/{stream}".
func Origin(site, gateway, stream string) string { return site + "/" + gateway + "/" + stream }

// SplitOrigin splits and checks an origin.
func SplitOrigin(origin string) (site, gateway, stream string, err error) {
	p := strings.Split(origin, "/")
	if len(p) != 3 || !ValidSegment(p[0]) || !ValidSegment(p[1]) || !ValidSegment(p[2]) {
		return "", "", "", fmt.Errorf("origin %q: want {site}/{gateway}/{stream} of [a-z0-9][a-z0-9-]*", origin)
	}
	return p[0], p[1], p[2], nil
}
