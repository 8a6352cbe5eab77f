// Package tokenizer is ringtrain's byte-level BPE tokenizer in the GPT-2
// format: training, encoding, decoding, and reading and writing vocab.json /
// merges.txt.
//
// # Using a tokenizer
//
//  1. Load a directory: tok, err := tokenizer.Load("data/tok") reads
//     vocab.json, merges.txt and, if present, special_tokens.json. A GPT-2
//     directory (vocab.json + merges.txt only) works as is: <|endoftext|> is
//     then special (id 50256) because vocab.json has it. Load(dir, "<x>")
//     adds special tokens; LoadFiles takes two paths and exactly the special
//     tokens given; New builds one from byte strings.
//  2. Encode: ids := tok.Encode(text) (or EncodeBytes / AppendEncode). Any
//     byte string is accepted. Special tokens are matched first (leftmost,
//     then longest: with "<|endoftext|>" and "<|endoftext|><|endoftext|>"
//     both special, the double one wins where it occurs); the text between
//     them is split into pre-tokens by the GPT-2 pattern (Pattern, matched by
//     a hand-written scanner) and each pre-token gets the merges applied in
//     priority order. With GPT-2's files the ids are those of tiktoken's
//     "gpt2" encoding. Pre-token encodings are cached per goroutine.
//  3. Large inputs: tok.EncodeStream(r, func(ids []int) error {...}) reads r
//     in chunks cut at safe boundaries (never inside a special token or a
//     pre-token), encodes them on all cores and hands the ids over in order
//     from the calling goroutine; the concatenation equals Encode of the
//     whole input, and memory stays at a few MiB whatever the input size.
//  4. Decode: text, err := tok.Decode(ids) is the exact inverse of Encode on
//     any byte string. The result is raw bytes and need not be valid UTF-8
//     (replace invalid bytes only when printing it as text). An id outside
//     the vocabulary is an ErrUnknownID error. To print decoded text as it
//     comes, write the bytes of each token to a UTF8Writer: it holds back a
//     character split over tokens until it is complete and writes bytes
//     that can never form one as U+FFFD.
//
// A Tokenizer is safe for concurrent use. VocabSize, Token, ID, SpecialID,
// SpecialTokens, Vocab and Merges describe it.
//
// # Training
//
//	tok, err := tokenizer.TrainFiles(tokenizer.TrainConfig{
//		VocabSize: 10000, Special: []string{tokenizer.EndOfText},
//	}, "corpus.txt")
//	err = tok.Save("data/tok")
//
// The input is read in streaming chunks (inputs may be larger than memory;
// what is kept is the count of each distinct pre-token), split at the special
// tokens (they add no counts and are never merged), pre-tokenized in
// parallel, and counted. The merge loop then repeatedly merges the most
// frequent adjacent pair, ties going to the lexicographically greater pair
// of byte strings (first token compared first, then the second), with
// incremental pair counts, an index from each pair to the pre-tokens holding
// it and a lazily updated max-heap. The vocabulary is: the special tokens
// (ids 0..S-1, in the order given), the 256 single bytes in GPT-2's order
// (printable bytes first, as in GPT-2's vocab.json), then one token per merge
// in order. This reproduces the CS336 reference vocabulary and merges
// exactly. Train takes io.Readers; CountPreTokens and TrainCounts expose the
// two phases.
//
// # Files
//
// A tokenizer directory holds:
//
//   - vocab.json: {"token": id, ...} with each token's bytes in GPT-2's
//     byte-to-unicode form (EncodeGPT2Bytes: printable Latin-1 bytes stand for
//     themselves, the others map to U+0100 and up, so space is 'Ġ'). Ids run
//     from 0 to n-1. Special tokens are in it too.
//   - merges.txt: one merge per line, "left right" in the same form, in
//     priority order, after an optional "#version" line.
//   - special_tokens.json: a JSON list of the special tokens (strings).
//     Save always writes it (an empty list when there are none). When it is
//     missing, Load takes <|endoftext|> as the only special token if
//     vocab.json has it, else none.
//
// Save writes all three; Load reads them back to an identical tokenizer.
//
// Load also reads a Hugging Face tokenizer.json (a directory holding only
// that file, or its path) when it is byte-level BPE in GPT-2's form
// (ParseTokenizerJSON: model BPE with vocab and merges, the ByteLevel
// pre-tokenizer, no normalizer; added tokens become special tokens);
// anything else is refused naming the field. Files read whole are at most
// MaxFileBytes. IsDir, Files and Copy find and move a tokenizer's files.
package tokenizer
