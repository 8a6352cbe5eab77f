package tokenizer

import (
	"bytes"
	"os"
	"testing"
)

// BenchmarkTrainCorpusEn trains on the CS336 reference corpus (vocab 500);
// the course asks for under 1.5 s.
func BenchmarkTrainCorpusEn(b *testing.B) {
	for b.Loop() {
		if _, err := TrainFiles(TrainConfig{VocabSize: 500, Special: []string{EndOfText}}, "testdata/corpus.en"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrainLarge trains vocabulary 8192 on the file named by
// $RINGTRAIN_BENCH_CORPUS (e.g. a 4 MB Austen corpus); skipped when unset.
func BenchmarkTrainLarge(b *testing.B) {
	path := os.Getenv("RINGTRAIN_BENCH_CORPUS")
	if path == "" {
		b.Skip("set RINGTRAIN_BENCH_CORPUS to a text file")
	}
	st, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(st.Size())
	for b.Loop() {
		if _, err := TrainFiles(TrainConfig{VocabSize: 8192, Special: []string{EndOfText}}, path); err != nil {
			b.Fatal(err)
		}
	}
}

func readShakespeare(b *testing.B) []byte {
	data, err := os.ReadFile(shakespearePath)
	if err != nil {
		b.Fatal(err)
	}
	return data
}

// BenchmarkEncodeGPT2 is single-goroutine Encode of tiny Shakespeare with the
// GPT-2 vocabulary: MB/s per core. The piece cache is warm after the first run.
func BenchmarkEncodeGPT2(b *testing.B) {
	tok := loadGPT2(b)
	text := readShakespeare(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.EncodeBytes(text)
	}
}

// BenchmarkEncodeGPT2Cold is Encode with an empty piece cache each time.
func BenchmarkEncodeGPT2Cold(b *testing.B) {
	tok := loadGPT2(b)
	text := readShakespeare(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		e := tok.getEncoder()
		clear(e.cache)
		tok.putEncoder(e)
		tok.EncodeBytes(text)
	}
}

// BenchmarkEncodeStreamGPT2 is EncodeStream on all cores (MB/s in total).
func BenchmarkEncodeStreamGPT2(b *testing.B) {
	tok := loadGPT2(b)
	text := readShakespeare(b)
	b.SetBytes(int64(len(text)))
	small := *tok
	small.chunkSize = 128 << 10 // several chunks per core on 1 MB
	for b.Loop() {
		n := 0
		if err := small.EncodeStream(bytes.NewReader(text), func(ids []int) error { n += len(ids); return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreTokenize is the pre-tokenizer alone on tiny Shakespeare.
func BenchmarkPreTokenize(b *testing.B) {
	text := readShakespeare(b)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		n := 0
		preTokenize(text, func([]byte) { n++ })
	}
}
