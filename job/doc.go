// Package job reads and validates a training job file (YAML; JSON is valid
// YAML): the model, the data, the optimisation schedule, evaluation,
// checkpointing and the size of the cluster.
//
//	j, err := job.Load("shakespeare.yaml") // defaults filled in, unknown keys rejected
//	if err != nil { ... }                   // errors name the offending key
//	if err := j.Validate(world); err != nil { ... } // checks that depend on the world size
//	cfg, err := trainer.ModelConfig(j.Model) // the model section is resolved where the model is built
package job
