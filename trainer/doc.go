// Package trainer runs the training of one rank: it owns the model, the
// optimizer and this rank's view of the data, and turns "do step s" into
// micro-batch forward/backward passes, one all-reduce of the gradients and
// the loss, gradient clipping and an AdamW update (SPEC sections 3 and 4).
//
// The network is not its business: a Reducer averages a buffer over all
// ranks (the ring all-reduce in a cluster, Local in a single process).
// Every rank starts from the same weights (the seed or the job's init file,
// or a checkpoint) and applies the same averaged gradients, so the replicas
// stay bit-identical without ever broadcasting weights.
//
//	t, err := trainer.New(trainer.Options{Job: j, Rank: r, World: w})
//	defer t.Close()
//	if dir, err := checkpoint.Latest(runDir); err == nil { err = t.Restore(dir) }
//	for t.Step() < j.Train.MaxSteps {
//		res, err := t.TrainStep(ctx, reducer) // res.Loss is the global mean loss
//		...
//	}
//	err = t.SaveCheckpoint(dir, jobText) // then checkpoint.Commit(dir) once every rank's part is durable
package trainer
