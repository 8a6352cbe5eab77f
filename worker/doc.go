// Package worker is one training process of a ringtrain cluster. It
// registers in etcd under the cluster prefix with a lease (name and
// advertised gRPC address), watches the generation the coordinator
// publishes, and for each generation it is a member of: builds its rank's
// trainer (restored from the generation's checkpoint), joins the
// generation's ring, trains step by step, reports every step to the
// coordinator, evaluates, and writes its part of each coordinated
// checkpoint. Rank 0 writes RUN/metrics.jsonl.
//
// A newer generation (a worker was lost, the coordinator restarted)
// cancels the current one; training restarts from the new generation's
// checkpoint. What the worker needs of a trainer and of the all-reduce is
// declared here (Trainer, Rings): small interfaces the trainer and
// allreduce packages satisfy through thin adapters.
package worker
