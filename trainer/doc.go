// Package trainer runs the training of one rank: it owns the model, the
// optimizer and this rank's view of the data, and turns "do step s" into
// micro-batch forward/backward passes, one sum over the ranks of the
// gradients (each micro-batch weighted by its share of the global batch, so
// that uneven slices give the gradient of the global mean loss), gradient
// clipping and an AdamW update (see docs/data.md for the batch layout).
//
// The network is not its business: a Reducer sums buffers over all ranks
// (*allreduce.Ring in a cluster, Local in a single process). Every rank
// starts from the same state and applies the same summed gradients, so the
// replicas stay bit-identical without broadcasting weights. One Trainer
// lives as long as its process: SetWorld moves it to another rank and
// world size between steps, and a state transfer from another rank writes
// StateBuffers and calls SetState.
//
// It also owns the model state's files (state.go): model.safetensors,
// optimizer.safetensors and state.json inside a checkpoint directory whose
// protocol (atomic files, COMMIT) is package checkpoint's.
//
//	t, err := trainer.New(trainer.Options{Job: j, Rank: r, World: w})
//	defer t.Close()
//	if dir, _, err := checkpoint.Latest(runDir); err == nil { err = t.Restore(dir) }
//	for t.Completed() < int64(j.Train.MaxSteps) {
//		res, err := t.TrainStep(ctx, ring, stopRequested) // res.Loss is the global mean loss; res.Votes counts the ranks that want to stop
//		...
//	}
//	err = t.SaveCheckpoint(trainer.DirWriter(dir), trainer.State{Loss: res.Loss}) // then checkpoint.Commit(dir)
package trainer
