// Package coordinator is the control plane of a ringtrain cluster.
//
// Membership lives in etcd under a cluster prefix (Keys): workers register
// with a lease, coordinators elect one leader, and the leader publishes
// the current Generation: the job, the ordered ring of ranks with each
// rank's slice of the global batch, and the checkpoint to start from.
//
// The decisions are made by Machine, a synchronous state machine driven by
// events (registered workers, worker reports, clock ticks, checkpoint
// commits) that returns actions (publish a generation, commit a
// checkpoint, finish). Coordinator is the thin layer around it that owns
// etcd, the clock and the gRPC service (JobStatus, WatchJob, Report), and
// exports Prometheus metrics through Collector.
//
// Checkpoints are coordinated: every checkpoint.every steps and at the
// last step each rank writes its part, reports it, and once every part is
// durable the coordinator writes the commit marker and prunes old ones.
// When a generation's member is lost the coordinator forms a new
// generation from the last committed checkpoint (phase recovering), or
// waits with a clear error if fewer than workers.min remain.
package coordinator
