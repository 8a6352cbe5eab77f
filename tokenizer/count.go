package tokenizer

import (
	"errors"
	"io"
	"runtime"
	"sync"
)

// Counts maps each distinct pre-token (its bytes as a string) to the number
// of times it occurs in the training text.
type Counts map[string]int64

// counter accumulates pre-token counts without allocating for pre-tokens it
// has seen: the map only indexes a slice of counts.
type counter struct {
	index  map[string]int32
	counts []int64
}

func newCounter() *counter { return &counter{index: make(map[string]int32, 1<<14)} }

func (c *counter) addText(b []byte, sm *specialMatcher) {
	sm.scan(b, func(start, end, special int) {
		if special >= 0 {
			return // special tokens split the text and add no counts
		}
		seg := b[start:end]
		for i := 0; i < len(seg); {
			j := nextPreToken(seg, i)
			if k, ok := c.index[string(seg[i:j])]; ok {
				c.counts[k]++
			} else {
				c.index[string(seg[i:j])] = int32(len(c.counts))
				c.counts = append(c.counts, 1)
			}
			i = j
		}
	})
}

func (c *counter) addTo(out Counts) {
	for tok, k := range c.index {
		out[tok] += c.counts[k]
	}
}

// CountOptions tunes CountPreTokens.
type CountOptions struct {
	Special   []string // split points that add no counts
	Workers   int      // pre-tokenizing goroutines; 0 means GOMAXPROCS
	ChunkSize int      // bytes per chunk; 0 means 1 MiB
	// Progress, when set, is called after each chunk with the bytes read so far.
	Progress func(bytesRead int64)
}

// CountPreTokens reads r to the end in chunks cut at safe boundaries and adds
// the count of every pre-token to into. Memory stays bounded by a few chunks
// plus the distinct pre-tokens, so inputs may be larger than RAM.
func CountPreTokens(r io.Reader, into Counts, opt CountOptions) error {
	workers := opt.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	sm := newSpecialMatcher(opt.Special)
	ch := newChunker(r, sm, opt.ChunkSize)
	chunks := make(chan []byte, workers)
	counters := make([]*counter, workers)
	var wg sync.WaitGroup
	for w := range workers {
		counters[w] = newCounter()
		wg.Go(func() {
			for b := range chunks {
				counters[w].addText(b, sm)
			}
		})
	}
	var err error
	for {
		var b []byte
		b, err = ch.next()
		if err != nil {
			break
		}
		chunks <- b
		if opt.Progress != nil {
			opt.Progress(ch.read)
		}
	}
	close(chunks)
	wg.Wait()
	if !errors.Is(err, io.EOF) {
		return err
	}
	for _, c := range counters {
		c.addTo(into)
	}
	return nil
}
