package main

import (
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/ringtrain/ringtrain/proto"
)

// A whole job over mutual TLS: etcd, coordinator, workers, status. A
// client without a certificate can neither report nor ask for the status.
func TestClusterTLS(t *testing.T) {
	skipShort(t)
	pki := t.TempDir()
	out, err := exec.Command(clusterBinary(t), "certs", "--out", pki, "--hosts", "127.0.0.1,localhost").CombinedOutput()
	if err != nil {
		t.Fatalf("certs: %v\n%s", err, out)
	}
	tls := []string{"--tls-ca", filepath.Join(pki, "ca.crt"), "--tls-cert", filepath.Join(pki, "node.crt"), "--tls-key", filepath.Join(pki, "node.key")}
	data := scenarioData(t)
	sj := scenarioJob{steps: 300, wmin: 2, wmax: 2}
	h := &harness{t: t, job: sj.write(t, data), runDir: t.TempDir(), etcdDir: filepath.Join(t.TempDir(), "etcd"), workers: map[string]*proc{}}
	h.etcdURL, h.etcdPeer = "https://"+freeAddr(t), "http://"+freeAddr(t)
	h.etcd = startProc(t, "etcd", append([]string{"etcd", "--data-dir", h.etcdDir, "--listen-client", h.etcdURL, "--listen-peer", h.etcdPeer}, tls...)...)
	waitOutput(t, h.etcd, "etcd serving", 30*time.Second)
	h.coordFlags, h.wflags = tls, tls
	coord := h.startCoordinator()
	h.startWorker("a")
	h.startWorker("b")
	addr := h.coordAddrs[0]

	// Without TLS, nothing: no status, no report.
	waitOutput(t, coord, "elected coordinator", 30*time.Second)
	plain, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = pb.NewCoordinatorClient(plain).Report(ctx, &pb.WorkerReport{Name: "a", Kind: pb.WorkerReport_KIND_FAILED, Error: "forged"})
	cancel()
	if err == nil {
		t.Fatal("a plaintext client could report to a TLS coordinator")
	}
	t.Logf("forged report without a certificate: %v", err)
	if o, err := exec.Command(clusterBinary(t), "status", "--coordinator", addr, "--timeout", "3s").CombinedOutput(); err == nil {
		t.Errorf("status without a certificate succeeded:\n%s", o)
	}

	// With the certificate, status works, and the job finishes.
	st, err := exec.Command(clusterBinary(t), append([]string{"status", "--coordinator", addr, "--json"}, tls...)...).Output()
	if err != nil || !strings.Contains(string(st), `"phase"`) {
		t.Fatalf("status over TLS: %v\n%s", err, st)
	}
	h.waitDone(coord, 2*time.Minute)
	stepLossesOf(t, h.history(), sj.steps)
	for _, p := range append([]*proc{coord, h.etcd}, h.workers["a"], h.workers["b"]) {
		if strings.Contains(p.out.String(), "without TLS") {
			t.Errorf("%s warns about plaintext although TLS is on", p.name)
		}
	}
}

// Without TLS, a report is accepted only from the address of the worker
// it names: forged reports from elsewhere (a FAILED that would end the
// job, a STEP far ahead) change nothing.
func TestForgedReports(t *testing.T) {
	skipShort(t)
	data := scenarioData(t)
	sj := scenarioJob{steps: 600, wmin: 2, wmax: 2}
	h := newHarness(t, sj.write(t, data))
	coord := h.startCoordinator()
	h.startWorker("a")
	h.startWorker("b")
	h.waitStep(50, time.Minute)
	st := h.status()
	var inc uint64
	for _, w := range st.GetWorkers() {
		if w.GetName() == "a" {
			inc = w.GetIncarnation()
		}
	}
	// Dial from 127.0.0.2: another host than the workers' 127.0.0.1.
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	cc, err := grpc.NewClient(h.coordAddrs[0], grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return dialer.DialContext(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cli := pb.NewCoordinatorClient(cc)
	for _, rep := range []*pb.WorkerReport{
		{Name: "a", Incarnation: inc, Generation: st.GetGeneration(), Rank: 0, Kind: pb.WorkerReport_KIND_FAILED, Error: "forged"},
		{Name: "a", Incarnation: inc, Generation: st.GetGeneration(), Rank: 0, Kind: pb.WorkerReport_KIND_STEP, Step: 599, Loss: 0.001},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		ack, err := cli.Report(ctx, rep)
		cancel()
		if err != nil || ack.GetRefused() == "" {
			t.Errorf("forged %v: ack %v, err %v; want refused", rep.GetKind(), ack, err)
		}
		t.Logf("forged %v from 127.0.0.2: %s", rep.GetKind(), ack.GetRefused())
	}
	if st2 := h.status(); st2.GetPhase() == "failed" || st2.GetStep() >= 599 {
		t.Errorf("a forged report took effect: phase %s step %d", st2.GetPhase(), st2.GetStep())
	}
	h.waitDone(coord, 2*time.Minute)
	losses := stepLossesOf(t, h.history(), sj.steps)
	if losses[598] == 0.001 {
		t.Error("the forged step's loss is in the history")
	}
}
