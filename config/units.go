package config

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// sizeUnits is ordered by size, so that FormatSize picks the shortest
// exact spelling.
var sizeUnits = []struct {
	name string
	mult uint64
}{
	{"TiB", 1 << 40}, {"TB", 1e12}, {"GiB", 1 << 30}, {"GB", 1e9},
	{"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"KB", 1e3},
	{"B", 1},
}

// ParseSize parses a byte count such as "1GiB", "500MB" or "4096" (bytes).
// Only integers are accepted: "1.5GiB" invites rounding questions that
// "1536MiB" does not.
func ParseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && '0' <= t[i] && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%q is not a size (use an integer and a unit: B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s)
	}
	n, err := strconv.ParseUint(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	unit := strings.TrimSpace(t[i:])
	if unit == "" {
		return n, nil
	}
	for _, u := range sizeUnits {
		if u.name == unit {
			hi, lo := bits.Mul64(n, u.mult)
			if hi != 0 {
				return 0, fmt.Errorf("%q is too large", s)
			}
			return lo, nil
		}
	}
	return 0, fmt.Errorf("%q has unknown unit %q (use B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
}

// FormatSize writes n with the largest unit that divides it exactly, so
// that FormatSize(ParseSize(s)) reads like s.
func FormatSize(n uint64) string {
	if n == 0 {
		return "0B"
	}
	for _, u := range sizeUnits {
		if n%u.mult == 0 {
			return strconv.FormatUint(n/u.mult, 10) + u.name
		}
	}
	return strconv.FormatUint(n, 10) + "B" // unreachable: B divides everything
}

// parseDuration is time.ParseDuration with a message that shows the syntax.
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (write e.g. \"90s\", \"2m\" or \"1h30m\")", s)
	}
	return d, nil
}

// fmtDuration prefers "2m" to time.Duration's "2m0s".
func fmtDuration(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d < 0:
		return d.String()
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	case d%time.Millisecond == 0:
		return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
	}
	return d.String()
}
