// Package checkpoint is the directory protocol of training checkpoints
// (see docs/checkpoints.md); it knows nothing of what the files hold.
//
// A checkpoint of a run is the directory RUN/checkpoints/step_NNNNNNNN/
// (Dir; the step is the number of steps completed) holding the files of
// the state (written by package trainer: model.safetensors,
// optimizer.safetensors, state.json, and whatever travels with the run,
// such as the tokenizer) and, written last, COMMIT: "sha256  file" for
// every other file.
//
// Every file is written to a temporary name, fsynced, renamed into place,
// and the directory fsynced (WriteFile). Different processes may write
// different files of the same step directory; once all are durable, one of
// them calls Commit, which hashes every file and writes the marker. A
// directory without COMMIT, or whose files do not match it, is never used:
// Latest skips it with a warning.
//
//	dir := checkpoint.Dir(runDir, step)
//	err := checkpoint.WriteFile(dir, name, func(w io.Writer) error { ... })
//	err = checkpoint.Commit(dir)
//	err = checkpoint.Prune(runDir, keep)
//
//	dir, step, err := checkpoint.Latest(runDir) // newest committed and verified; ErrNoCheckpoint if none
//	files, err := checkpoint.Files(dir)          // what COMMIT lists, to copy the checkpoint elsewhere
package checkpoint
