// Package checkpoint writes and finds training checkpoints (SPEC section 6).
//
// A checkpoint of a run is the directory RUN/checkpoints/step_NNNNNNNN/
// (Dir) holding
//
//	model.safetensors      the parameters (section-2 names, config in __metadata__)
//	optimizer*.safetensors AdamW moments, tensors exp_avg.<name> and exp_avg_sq.<name>;
//	                       one file or several (e.g. one per worker) with disjoint tensors
//	state.json             step, data position, seed, world size, job file text, ...
//	COMMIT                 written last: "sha256  file" for every other file
//
// Every file is written to a temporary name, fsynced, renamed into place,
// and the directory fsynced (WriteFile). Different processes may write
// different files of the same step directory; once all are durable, one of
// them calls Commit, which hashes every file and writes the marker. A
// directory without COMMIT, or whose files do not match it, is never used:
// Latest skips it with a warning.
//
//	dir := checkpoint.Dir(runDir, step)
//	err := checkpoint.WriteModel(dir, cfg, m.Params)
//	err = checkpoint.WriteOptimizer(dir, checkpoint.OptimizerFile, opt.Layout(), opt.M, opt.V)
//	err = checkpoint.WriteState(dir, checkpoint.State{Step: step, DataPosition: pos, ...})
//	err = checkpoint.Commit(dir)
//	err = checkpoint.Prune(runDir, keep)
//
//	dir, err := checkpoint.Latest(runDir) // newest committed and verified; ErrNoCheckpoint if none
//	st, err := checkpoint.ReadState(dir)
//	err = model.LoadInto(filepath.Join(dir, checkpoint.ModelFile), cfg, m.Params)
//	err = checkpoint.ReadOptimizer(dir, opt.Layout(), opt.M, opt.V)
//
// Resolve turns a --checkpoint argument (run dir, checkpoint dir or
// .safetensors file) into a model file; LoadModel also reads it.
package checkpoint
