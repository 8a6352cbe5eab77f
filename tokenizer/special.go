package tokenizer

import (
	"bytes"
	"cmp"
	"slices"
)

// specialMatcher finds special tokens in text: the leftmost occurrence wins,
// and among occurrences at the same position the longest.
type specialMatcher struct {
	toks   [][]byte // longest first
	index  []int    // index of toks[k] in the caller's list
	maxLen int
}

func newSpecialMatcher(special []string) *specialMatcher {
	m := &specialMatcher{}
	order := make([]int, len(special))
	for k := range order {
		order[k] = k
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(special[b]), len(special[a])) })
	for _, k := range order {
		if special[k] == "" {
			continue
		}
		m.toks = append(m.toks, []byte(special[k]))
		m.index = append(m.index, k)
		m.maxLen = max(m.maxLen, len(special[k]))
	}
	return m
}

// scan calls fn for each piece of b in order, by position: text between
// special tokens with special = -1 (never empty), and each special token
// occurrence with special = its index in the list given to
// newSpecialMatcher.
func (m *specialMatcher) scan(b []byte, fn func(start, end, special int)) {
	if m == nil || len(m.toks) == 0 {
		if len(b) > 0 {
			fn(0, len(b), -1)
		}
		return
	}
	// next[k] caches the position of the next occurrence of toks[k] at or
	// after the scan position (-1: none left), so the scan stays linear.
	next := make([]int, len(m.toks))
	for k, t := range m.toks {
		next[k] = bytes.Index(b, t)
	}
	from := 0
	for {
		best, bk := -1, -1
		for k, t := range m.toks {
			if next[k] >= 0 && next[k] < from {
				if p := bytes.Index(b[from:], t); p >= 0 {
					next[k] = from + p
				} else {
					next[k] = -1
				}
			}
			if next[k] >= 0 && (best < 0 || next[k] < best) {
				best, bk = next[k], k
			}
		}
		if best < 0 {
			break
		}
		if best > from {
			fn(from, best, -1)
		}
		end := best + len(m.toks[bk])
		fn(best, end, m.index[bk])
		from = end
	}
	if from < len(b) {
		fn(from, len(b), -1)
	}
}

// lastEnd returns the end of the last special token occurrence that starts
// before limit, or 0 when there is none.
func (m *specialMatcher) lastEnd(b []byte, limit int) int {
	last := 0
	m.scan(b, func(start, end, special int) {
		if special >= 0 && start < limit {
			last = end
		}
	})
	return last
}
