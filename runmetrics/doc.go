// Package runmetrics reads a run's RUN/metrics.jsonl: one JSON object per
// optimizer step (loss, learning rate, tokens/s, world size, time; eval steps
// add val_loss) and cluster event lines ("event": generation, joined, lost,
// healed, checkpoint, stalled, stopped) that carry no loss.
//
//	log, err := runmetrics.ReadFile(filepath.Join(run, "metrics.jsonl"))
//	for _, s := range log.Steps { ... }       // sorted by step
//	for _, g := range log.Generations() { ... } // where the membership changed
//
// A last line without its newline that does not parse is taken to be still
// being written and left out; any other line that does not parse is an error
// naming the file and line.
package runmetrics
