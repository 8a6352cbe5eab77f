// Package cluster is the contract between ringtrain's processes: the etcd
// key layout, the JSON records under it, and the readers and watchers both
// sides use. It is a leaf: the coordinator and the worker import it and
// not each other.
//
// Keys under a cluster prefix (Keys; DefaultPrefix "/ringtrain"):
//
//	PREFIX/job           the job the leader runs (JSON JobRecord: run id, job, shard manifest); no lease
//	PREFIX/coordinator   the leader's gRPC address (JSON CoordinatorRecord), with the leader's lease
//	PREFIX/result        the final state of the job that ended last (JSON Result); no lease, deleted by a new leader
//	PREFIX/election/…    the coordinators' election (go.etcd.io/etcd/client/v3/concurrency)
//	PREFIX/members/NAME  a worker's registration (JSON Member), with the worker's lease
//	PREFIX/generation    the current generation (JSON Generation); no lease: it outlives its coordinator
//	PREFIX/generation-id the newest generation id (decimal), so that ids keep growing across coordinators
//
// A generation is a ring: its members by rank, the mode (train, drain,
// done, failed) and the newest committed checkpoint. Training state is
// named by a Version (steps completed, and the generation whose ring
// computed the newest step); at the start of a generation the members
// continue from the newest Version any of them holds (see package heal).
//
// Every watcher here survives etcd outages: it retries with backoff and
// resumes from where it was, so that an unreachable etcd delays membership
// changes but stops nothing.
package cluster
