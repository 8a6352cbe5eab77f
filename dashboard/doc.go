// Package dashboard serves a job's live dashboard: one page (embedded, no
// internet needed) with the job's phase and progress, the loss curves,
// learning rate and tokens/s against step (server-side SVG drawn by package
// runplot from RUN/metrics.jsonl), the workers with their step time split
// into compute, all-reduce wait and optimizer, and the newest events. The
// page polls two endpoints it is served next to:
//
//	GET /api/status   the status as JSON, the same object `ringtrain status --json` prints (StatusJSON)
//	GET /chart.svg    the charts (?width=&height= in pixels); 204 before the first step
//
// It needs only a Source: the status snapshot and the run directory
// (*coordinator.Coordinator is one), so the coordinator does not depend on
// it. See docs/dashboard.md.
//
//	srv := dashboard.New(coord)
//	http.ListenAndServe("127.0.0.1:8080", srv)
package dashboard
