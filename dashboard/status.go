package dashboard

import (
	"encoding/json"

	pb "github.com/ringtrain/ringtrain/proto"
)

// StatusJSON renders a status as one JSON object with snake_case keys and
// numbers as JSON numbers: what `ringtrain status --json` prints and
// /api/status serves. val_loss and val_step are present only once an
// evaluation ran.
func StatusJSON(st *pb.JobStatusResponse) ([]byte, error) {
	type workerJSON struct {
		Name                string  `json:"name"`
		Rank                int32   `json:"rank"`
		Address             string  `json:"address"`
		State               string  `json:"state"`
		Step                int64   `json:"step"`
		StepTimeS           float64 `json:"step_time_s"`
		ComputeS            float64 `json:"compute_s"`
		AllreduceWaitS      float64 `json:"allreduce_wait_s"`
		OptimizerS          float64 `json:"optimizer_s"`
		TokensPerS          float64 `json:"tokens_per_s"`
		LastHeartbeatUnixMs int64   `json:"last_heartbeat_unix_ms"`
		Detail              string  `json:"detail,omitempty"`
	}
	type eventJSON struct {
		TimeUnixMs int64   `json:"time_unix_ms"`
		Kind       string  `json:"kind"`
		Step       int64   `json:"step"`
		Generation int64   `json:"generation,omitempty"`
		Worker     string  `json:"worker,omitempty"`
		Seconds    float64 `json:"seconds,omitempty"`
		Detail     string  `json:"detail,omitempty"`
	}
	out := struct {
		Job                string       `json:"job"`
		Phase              string       `json:"phase"`
		Step               int64        `json:"step"`
		MaxSteps           int64        `json:"max_steps"`
		Loss               float64      `json:"loss"`
		ValLoss            *float64     `json:"val_loss,omitempty"`
		ValStep            *int64       `json:"val_step,omitempty"`
		LR                 float64      `json:"lr"`
		GradNorm           float64      `json:"grad_norm"`
		TokensPerS         float64      `json:"tokens_per_s"`
		Tokens             int64        `json:"tokens"`
		EtaS               float64      `json:"eta_s"`
		Generation         int64        `json:"generation"`
		WorldSize          int32        `json:"world_size"`
		LastCheckpointStep int64        `json:"last_checkpoint_step"`
		RunDir             string       `json:"run_dir"`
		Run                string       `json:"run,omitempty"`
		Coordinator        string       `json:"coordinator,omitempty"`
		Error              string       `json:"error"`
		TimeUnixMs         int64        `json:"time_unix_ms"`
		Workers            []workerJSON `json:"workers"`
		Events             []eventJSON  `json:"events"`
	}{
		Job: st.GetJob(), Phase: st.GetPhase(), Step: st.GetStep(), MaxSteps: st.GetMaxSteps(), Loss: st.GetLoss(),
		LR: st.GetLr(), GradNorm: st.GetGradNorm(), TokensPerS: st.GetTokensPerS(),
		Tokens: st.GetTokens(), EtaS: st.GetEtaS(), Generation: st.GetGeneration(), WorldSize: st.GetWorldSize(),
		LastCheckpointStep: st.GetLastCheckpointStep(), RunDir: st.GetRunDir(), Run: st.GetRun(), Coordinator: st.GetCoordinator(),
		Error: st.GetError(), TimeUnixMs: st.GetTimeUnixMs(), Workers: []workerJSON{}, Events: []eventJSON{},
	}
	if st.GetHasValLoss() {
		v, s := st.GetValLoss(), st.GetValStep()
		out.ValLoss, out.ValStep = &v, &s
	}
	for _, w := range st.GetWorkers() {
		out.Workers = append(out.Workers, workerJSON{Name: w.GetName(), Rank: w.GetRank(), Address: w.GetAddress(),
			State: w.GetState(), Step: w.GetStep(), StepTimeS: w.GetStepTimeS(), ComputeS: w.GetComputeS(),
			AllreduceWaitS: w.GetAllreduceWaitS(), OptimizerS: w.GetOptimizerS(), TokensPerS: w.GetTokensPerS(),
			LastHeartbeatUnixMs: w.GetLastHeartbeatUnixMs(), Detail: w.GetDetail()})
	}
	for _, e := range st.GetEvents() {
		out.Events = append(out.Events, eventJSON{TimeUnixMs: e.GetTimeUnixMs(), Kind: e.GetKind(), Step: e.GetStep(),
			Generation: e.GetGeneration(), Worker: e.GetWorker(), Seconds: e.GetSeconds(), Detail: e.GetDetail()})
	}
	return json.Marshal(out)
}
