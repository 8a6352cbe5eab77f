// Package dataprep turns text into the token shards training reads: the
// pipeline behind `ringtrain prepare`.
//
//	tok, err := dataprep.LoadTokenizer("data/tok", tokenizer.EndOfText)
//	inputs, err := dataprep.Inputs("a.txt", "b.txt")
//	res, err := dataprep.Prepare(ctx, dataprep.Config{
//		Inputs: inputs, Out: "data", ValFraction: 0.1, ShardTokens: 100_000_000,
//		Separator: tokenizer.EndOfText,
//	}, tok)
//	// res.TrainShards: data/train_000000.bin, …; res.ValShards: data/val_000000.bin, …
//
// # Documents
//
// An Input is a file and its Format, which splits the file's bytes into
// documents; Text makes the whole file one document. The documents of all
// inputs, in order, are encoded as one token stream. Occurrences of the
// separator (a special token, usually <|endoftext|>) in the text are
// encoded as that token, and one separator token goes between consecutive
// documents, unless the stream is still empty or already ends with it.
//
// Inputs chooses each file's Format from its name: JSONLines for .jsonl
// and .ndjson (a document per line, from one string field), Text
// otherwise, wrapped in Gzip for .gz; a directory expands into such files
// under it (InputOptions set the JSON field). Progress counts the bytes of
// the files as stored, so it stays right for compressed input.
//
// # Splits and shards
//
// Of the N tokens of the stream, the last ValTokens(N, F) = ⌈F·N⌉ (at least
// one when F > 0) are the val split, the rest the train split. Each split
// is cut into k = ⌈tokens/ShardTokens⌉ shards of equal size (±1 token),
// so there is no tiny last shard. The shard format and how training reads
// the shards are in docs/data.md.
package dataprep
