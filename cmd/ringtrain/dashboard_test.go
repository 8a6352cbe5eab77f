package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// stalledJob is a real cluster (embedded etcd, a coordinator process with
// the dashboard, two worker processes with metrics) whose workers stall
// before step stallAt: the job stays running at that step, so that what
// the page, status --json and /metrics show can be compared at leisure.
type stalledJob struct {
	etcdURL, prefix, coordAddr, dashboardURL, coordMetrics string
	workerMetrics                                          []string
	status                                                 map[string]any // status --json once stalled
	raw                                                    []byte
}

const stallAt = 12

func startStalledJob(t *testing.T) *stalledJob {
	t.Helper()
	sj := &stalledJob{etcdURL: clusterEtcd(t), prefix: "/dash", coordAddr: freeAddr(t)}
	data := clusterData(t)
	job := clusterJob(t, data, 40, 5, 32, 2, 2) // eval and checkpoint every 5 steps
	// The HTTP servers listen on port 0 and log where they are.
	procs := []*proc{startProc(t, "coordinator", "coordinator", "--etcd", sj.etcdURL, "--listen", sj.coordAddr, "--job", job,
		"--run-dir", t.TempDir(), "--prefix", sj.prefix, "--metrics-listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--settle", "100ms", "--ttl", "2s")}
	sj.coordMetrics = loggedURL(t, procs[0], "prometheus metrics")
	sj.dashboardURL = loggedURL(t, procs[0], "dashboard")
	for i := range 2 {
		p := startProcEnv(t, fmt.Sprintf("worker %d", i), []string{fmt.Sprintf("%s=%d", stallEnv, stallAt)}, "worker", "--etcd", sj.etcdURL,
			"--listen", "127.0.0.1:0", "--name", fmt.Sprintf("w%d", i), "--prefix", sj.prefix, "--ttl", "2s", "--metrics-listen", "127.0.0.1:0")
		sj.workerMetrics = append(sj.workerMetrics, loggedURL(t, p, "prometheus metrics"))
		procs = append(procs, p)
	}
	// Stalled: both workers at stallAt, the phase running.
	deadline := time.Now().Add(120 * time.Second)
	for {
		for _, p := range procs {
			select {
			case err := <-p.done:
				p.done <- err
				t.Fatalf("%s exited before the job stalled: %v", p.name, err)
			default:
			}
		}
		out, err := exec.Command(clusterBinary(t), "status", "--coordinator", sj.coordAddr, "--json", "--timeout", "2s").Output()
		if err == nil {
			var st map[string]any
			if err := json.Unmarshal(out, &st); err != nil {
				t.Fatalf("status --json %q: %v", out, err)
			}
			ws, _ := st["workers"].([]any)
			at := 0
			for _, w := range ws {
				if w.(map[string]any)["step"] == float64(stallAt) {
					at++
				}
			}
			if st["step"] == float64(stallAt) && st["phase"] == "running" && at == 2 {
				sj.status, sj.raw = st, out
				return sj
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job did not stall at step %d within 2 minutes; status %s (%v)", stallAt, out, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// loggedURL waits for p to log `msg=… url=URL` (or msg="…") and returns URL.
func loggedURL(t *testing.T, p *proc, msg string) string {
	t.Helper()
	m := msg
	if strings.Contains(msg, " ") {
		m = strconv.Quote(msg)
	}
	re := regexp.MustCompile(`msg=` + regexp.QuoteMeta(m) + ` url=(\S+)`)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if sub := re.FindStringSubmatch(p.out.String()); sub != nil {
			return sub[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not log %q with its url:\n%s", p.name, msg, p.out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// browser finds a Chrome or Chromium, or "".
func browser() string {
	if p := os.Getenv("RINGTRAIN_BROWSER"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// pageView is what the dashboard page shows, read from its DOM.
type pageView struct {
	Phase, Step, Loss, Val string
	Workers                []struct{ Name, Rank, State, Step, StepTime, Split string }
	Events                 []string // kinds, newest first
	ChartText              []string
	TrainPoints, ValPoints int
}

// readPage is JavaScript that reads the page into a pageView. The charts
// are runplot's SVG: the train loss is the longest line in its colour
// (#1F77B4), each evaluation a filled circle in the val colour (#FF7F0E),
// one more of which is in the legend.
const readPage = `(() => {
  const text = (sel, root) => (root || document).querySelector(sel).textContent.trim();
  const paths = [...document.querySelectorAll("#chart svg path")];
  const train = paths.filter(p => (p.getAttribute("style") || "").includes("stroke:#1F77B4"))
    .map(p => (p.getAttribute("d").match(/L/g) || []).length + 1);
  const val = paths.filter(p => (p.getAttribute("style") || "") === "fill:#FF7F0E" && p.getAttribute("d").includes("A"));
  return {
    Phase: text("#phase"), Step: text("#step"), Loss: text("#loss"), Val: text("#val"),
    Workers: [...document.querySelectorAll("#workers tbody tr")].map(tr => ({
      Name: text(".name", tr), Rank: text(".rank", tr), State: text(".state-cell", tr), Step: text(".step", tr),
      StepTime: text(".steptime", tr), Split: text(".splitn", tr)})),
    Events: [...document.querySelectorAll("#events li")].map(li => li.dataset.kind),
    ChartText: [...document.querySelectorAll("#chart svg text")].map(t => t.textContent),
    TrainPoints: Math.max(0, ...train), ValPoints: Math.max(0, val.length - 1),
  };
})()`

// jsDur and jsMs are the page's fmtDur and ms.
func jsDur(s float64) string {
	switch {
	case s <= 0:
		return "0s"
	case s < 1:
		return fmt.Sprintf("%dms", int(math.Round(s*1000)))
	case s < 60:
		return strconv.FormatFloat(s, 'f', 1, 64) + "s"
	}
	return fmt.Sprintf("%dm%02ds", int(s/60), int(math.Mod(s, 60)))
}

func jsMs(s float64) string {
	prec := 0
	if s < 0.01 {
		prec = 1
	}
	return strconv.FormatFloat(s*1000, 'f', prec, 64)
}

func TestDashboardBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary, runs a cluster and a browser")
	}
	exe := browser()
	if exe == "" {
		t.Skip("no Chromium or Chrome found (apt-get install chromium, or set RINGTRAIN_BROWSER): the dashboard's browser test is skipped")
	}
	sj := startStalledJob(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.WindowSize(1280, 1000))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(sj.dashboardURL)); err != nil {
		t.Fatalf("open %s in %s: %v", sj.dashboardURL, exe, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.WaitVisible("#chart svg"), chromedp.WaitVisible("#workers tbody tr")); err != nil {
		t.Fatalf("the page shows no chart or no worker table: %v", err)
	}
	// The page polls every second and fetches the chart when the step
	// moved: wait until it shows the stalled step in both.
	var page pageView
	want := fmt.Sprintf("%d / %d", stallAt, 40)
	for {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](readPage))
		if err != nil {
			t.Fatalf("read the page: %v", err)
		}
		page = v
		if page.Step == want && page.TrainPoints == stallAt {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page never showed step %q with %d points: %+v", want, stallAt, page)
		case <-time.After(200 * time.Millisecond):
		}
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv("RINGTRAIN_DASHBOARD_SCREENSHOT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))

	// What the page shows is what status --json says.
	st := sj.status
	out, err := exec.Command(clusterBinary(t), "status", "--coordinator", sj.coordAddr, "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatal(err)
	}
	num := func(m map[string]any, k string) float64 { return m[k].(float64) }
	if page.Phase != st["phase"] {
		t.Errorf("page phase %q, status %v", page.Phase, st["phase"])
	}
	if w := fmt.Sprintf("%.4f", num(st, "loss")); page.Loss != w {
		t.Errorf("page loss %q, status %s", page.Loss, w)
	}
	if _, ok := st["val_loss"]; !ok {
		t.Fatalf("status has no val_loss after %d steps with eval every 5: %s", stallAt, out)
	}
	if w := fmt.Sprintf("%.4f after %d", num(st, "val_loss"), int(num(st, "val_step"))); page.Val != w {
		t.Errorf("page val loss %q, status %s", page.Val, w)
	}
	ws := st["workers"].([]any)
	if len(page.Workers) != len(ws) {
		t.Fatalf("page shows %d workers, status %d", len(page.Workers), len(ws))
	}
	for i, pw := range page.Workers {
		w := ws[i].(map[string]any)
		exp := fmt.Sprintf("%s %d %s %d %s %s / %s / %s ms", w["name"], int(num(w, "rank")), w["state"], int(num(w, "step")), jsDur(num(w, "step_time_s")),
			jsMs(num(w, "compute_s")), jsMs(num(w, "allreduce_wait_s")), jsMs(num(w, "optimizer_s")))
		if got := strings.Join([]string{pw.Name, pw.Rank, pw.State, pw.Step, pw.StepTime, pw.Split}, " "); got != exp {
			t.Errorf("worker row %d: page %q, status %q", i, got, exp)
		}
	}
	evs := st["events"].([]any)
	if len(page.Events) != len(evs) {
		t.Errorf("page shows %d events, status %d", len(page.Events), len(evs))
	} else {
		for i, e := range evs {
			if k := e.(map[string]any)["kind"]; page.Events[len(evs)-1-i] != k {
				t.Errorf("event %d: page %q, status %v", i, page.Events[len(evs)-1-i], k)
			}
		}
	}
	title := fmt.Sprintf("tiny: %d steps, loss %.4f, val %.4f after %d steps", stallAt, num(st, "loss"), num(st, "val_loss"), int(num(st, "val_step")))
	if !strings.Contains(strings.Join(page.ChartText, "\n"), title) {
		t.Errorf("chart title is not %q: %q", title, page.ChartText)
	}
	if page.ValPoints != stallAt/5 {
		t.Errorf("chart shows %d evaluations, want %d", page.ValPoints, stallAt/5)
	}
	for _, label := range []string{"loss", "learning rate", "tokens/s", "step"} {
		if !strings.Contains("\n"+strings.Join(page.ChartText, "\n")+"\n", "\n"+label+"\n") {
			t.Errorf("chart has no %q label", label)
		}
	}
}

// scrape returns the samples of a Prometheus text page: "name{labels}" → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	out := map[string]float64{}
	sample := regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$`)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := sample.FindStringSubmatch(sc.Text()); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err == nil {
				out[m[1]] = v
			}
		}
	}
	return out
}

func TestMetricsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary and runs a cluster")
	}
	sj := startStalledJob(t)
	c := scrape(t, sj.coordMetrics)
	for key, want := range map[string]float64{
		"ringtrain_step": stallAt, "ringtrain_generations_total": 1, "ringtrain_workers_joined_total": 2,
		"ringtrain_checkpoints_committed_total": 2, "ringtrain_checkpoint_seconds_count": 2, "ringtrain_workers_lost_total": 0,
		"ringtrain_world_size": 2, `ringtrain_phase{phase="running"}`: 1,
	} {
		if got, ok := c[key]; !ok || got != want {
			t.Errorf("coordinator %s = %v (present %v), want %v", key, got, ok, want)
		}
	}
	for _, key := range []string{"ringtrain_val_loss", "ringtrain_learning_rate", "ringtrain_loss"} {
		if _, ok := c[key]; !ok {
			t.Errorf("coordinator has no %s after %d steps", key, stallAt)
		}
	}
	for i, url := range sj.workerMetrics {
		w := scrape(t, url)
		name := fmt.Sprintf("w%d", i)
		lbl := func(metric, extra string) string {
			if extra != "" {
				extra += ","
			}
			return fmt.Sprintf(`%s{%sworker="%s"}`, metric, extra, name)
		}
		for _, phase := range []string{"forward", "backward", "allreduce_wait", "optimizer", "step"} {
			if got := w[lbl("ringtrain_worker_step_phase_seconds_count", `phase="`+phase+`"`)]; got != stallAt {
				t.Errorf("%s: %s steps timed, want %d", name, phase, stallAt)
			}
		}
		if got := w[lbl("ringtrain_worker_steps_total", "")]; got != stallAt {
			t.Errorf("%s: steps_total %v, want %d", name, got, stallAt)
		}
		if got := w[lbl("ringtrain_worker_allreduce_seconds_count", "")]; got != stallAt {
			t.Errorf("%s: all-reduce timed %v times, want %d", name, got, stallAt)
		}
		if got := w[lbl("ringtrain_worker_allreduce_bytes_total", "")]; got <= 0 || math.Mod(got, stallAt) != 0 {
			t.Errorf("%s: all-reduce bytes %v, want a positive multiple of %d steps", name, got, stallAt)
		}
		if got, ok := w[lbl("ringtrain_worker_world_size", "")]; !ok || got != 2 {
			t.Errorf("%s: world size %v (present %v), want 2", name, got, ok)
		}
		if _, ok := w[lbl("ringtrain_worker_rank", "")]; !ok {
			t.Errorf("%s: no rank gauge", name)
		}
		uploads := w[lbl("ringtrain_worker_checkpoint_upload_seconds_count", "")]
		if rank := w[lbl("ringtrain_worker_rank", "")]; (rank == 0) != (uploads == 2) {
			t.Errorf("%s (rank %v): %v checkpoint uploads; rank 0 uploads the 2 checkpoints", name, rank, uploads)
		}
		resp, err := http.Get(strings.TrimSuffix(url, "metrics") + "healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("%s /healthz: %v %v", name, resp, err)
		} else {
			resp.Body.Close()
		}
	}
}

// local --http prints the dashboard's URL and serves it; its progress on a
// pipe has no \r.
func TestLocalDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary and trains")
	}
	job := clusterJob(t, clusterData(t), 2000, 0, 32, 1, 1)
	p := startProc(t, "local", "local", "--job", job, "--run-dir", t.TempDir(), "--http", "127.0.0.1:0", "--log-every", "50")
	waitOutput(t, p, "dashboard: http://", 60*time.Second)
	url := regexp.MustCompile(`dashboard: (http://\S+/)`).FindStringSubmatch(p.out.String())[1]
	var st map[string]any
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(url + "api/status")
		if err != nil {
			t.Fatalf("GET %sapi/status: %v", url, err)
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if st["step"].(float64) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st["job"] != "tiny" || st["step"].(float64) == 0 || st["max_steps"] != 2000.0 {
		t.Errorf("local's /api/status: %v", st)
	}
	resp, err := http.Get(url)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %v", url, resp, err)
	}
	resp.Body.Close()
	sendSignal(t, p, syscall.SIGINT)
	if err := p.wait(t, 60*time.Second); err != nil {
		t.Fatalf("local after SIGINT: %v", err)
	}
	if out := p.out.String(); strings.Contains(out, "\r") {
		t.Errorf("local wrote \\r to a pipe:\n%s", out)
	}
}

// After the job: status --etcd prints the final state the coordinator
// left in etcd; watch --etcd started before the coordinator follows the job
// to its end; a coordinator that is gone gets one clear line.
func TestStatusAfterJob(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: builds the binary and runs a cluster")
	}
	etcdURL := clusterEtcd(t)
	const prefix, steps = "/after", 150
	bin := clusterBinary(t)
	watch := startProc(t, "watch", "watch", "--etcd", etcdURL, "--prefix", prefix)
	waitOutput(t, watch, "waiting: nothing under /after", 30*time.Second)
	addr, coord := startCoordinator(t, "coordinator", etcdURL, prefix, clusterJob(t, clusterData(t), steps, 50, 32, 1, 1), t.TempDir())
	startWorkers(t, etcdURL, prefix, 1)
	if err := coord.wait(t, 60*time.Second); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	if err := watch.wait(t, 30*time.Second); err != nil {
		t.Errorf("watch --etcd: %v", err)
	}
	if out := watch.out.String(); !strings.Contains(out, fmt.Sprintf("job tiny done at step %d, loss", steps)) || strings.Contains(out, "\r") {
		t.Errorf("watch --etcd output:\n%s", out)
	}

	out, err := exec.Command(bin, "status", "--etcd", etcdURL, "--prefix", prefix).CombinedOutput()
	if err != nil || !regexp.MustCompile(`^job tiny done at step 150, loss \d\.\d{4}, val loss \d\.\d{4} after 150 steps \(final state recorded by the coordinator at `+regexp.QuoteMeta(addr)).Match(out) {
		t.Errorf("status --etcd after the job: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "status", "--etcd", etcdURL, "--prefix", prefix, "--json").Output()
	var st map[string]any
	if err != nil || json.Unmarshal(out, &st) != nil || st["phase"] != "done" || st["step"] != float64(steps) || st["val_loss"] == nil {
		t.Errorf("status --etcd --json after the job: %v %s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--coordinator", addr}, "ringtrain: no coordinator answers at " + addr + " (connection refused); the job may be over or its coordinator moved: with --etcd URLS"},
		{[]string{"--etcd", etcdURL, "--prefix", "/nothing"}, "ringtrain: nothing under /nothing in etcd"},
		{[]string{"--etcd", etcdURL, "--coordinator", addr}, "ringtrain: --coordinator and --etcd: give one of them"},
	} {
		out, err := exec.Command(bin, append([]string{"status", "--timeout", "5s"}, c.args...)...).CombinedOutput()
		if err == nil || !strings.HasPrefix(string(out), c.want) || strings.Count(string(out), "\n") != 1 {
			t.Errorf("status %v: %v\n%s\nwant one line starting %q", c.args, err, out, c.want)
		}
	}
}
