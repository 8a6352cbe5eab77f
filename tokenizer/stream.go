package tokenizer

import (
	"errors"
	"io"
	"runtime"
	"sync"
)

// EncodeStream encodes everything r yields and calls fn with the ids of
// consecutive pieces of the text, in order, from the calling goroutine. The
// text is read in chunks cut at safe boundaries (never inside a special token
// or a pre-token), so the concatenation of the ids equals Encode of the
// whole text, while memory stays bounded by a few chunks. Chunks are encoded
// in parallel on GOMAXPROCS goroutines. Each ids slice is fresh: fn may keep
// it. An error from fn stops the stream and is returned; so is a read error.
// For progress by bytes, wrap r in a counting reader.
func (t *Tokenizer) EncodeStream(r io.Reader, fn func(ids []int) error) error {
	workers := runtime.GOMAXPROCS(0)
	ch := newChunker(r, t.sm, t.chunkSize)
	type result struct {
		ids []int
	}
	type job struct {
		text []byte
		out  chan result
	}
	jobs := make(chan job)
	order := make(chan chan result, 2*workers)
	done := make(chan struct{})
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() { // reader: chunks in order
		defer close(order)
		defer close(jobs)
		for {
			b, err := ch.next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				return
			}
			out := make(chan result, 1)
			select {
			case order <- out:
			case <-done:
				return
			}
			select {
			case jobs <- job{b, out}:
			case <-done:
				return
			}
		}
	})
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				j.out <- result{t.AppendEncode(nil, j.text)}
			}
		})
	}
	var err error
	for out := range order {
		res := <-out
		if err = fn(res.ids); err != nil {
			break
		}
	}
	close(done)
	for range order { // lets the reader see done and finish
	}
	wg.Wait()
	if err != nil {
		return err
	}
	return readErr
}
