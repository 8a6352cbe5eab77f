// Package ringtrainpb holds the Go code generated from proto/*.proto
// (scripts/genproto.sh, `make proto`): the coordinator's service
// (coordinator.proto: JobStatus, WatchJob, worker Report) and the ring
// all-reduce peer protocol (peer.proto). Edit the .proto files, never the
// generated code.
package ringtrainpb
