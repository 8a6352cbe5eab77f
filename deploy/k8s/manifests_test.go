// Package k8s holds ringtrain's Kubernetes manifests; this test decodes them
// strictly into the Kubernetes API types and checks that they refer to each
// other, to the ringtrain command line and to the job correctly.
package k8s

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/ringtrain/ringtrain/job"
)

// manifests is everything in deploy/k8s/*.yaml, by kind and name.
type manifests struct {
	services   map[string]*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	pvcs       map[string]*corev1.PersistentVolumeClaim
	secretKeys map[string][]string // Secrets: their keys
	workloads  []*workload
}

// workload is a Deployment or StatefulSet.
type workload struct {
	ref         string // "Kind/name (file)"
	replicas    int32
	selector    map[string]string
	template    corev1.PodTemplateSpec
	serviceName string                         // StatefulSet only
	claims      []corev1.PersistentVolumeClaim // StatefulSet volumeClaimTemplates
}

// readmeSecret is how README.md says to make the TLS Secret, which is not a
// manifest (it holds the keys made by `ringtrain certs`).
var readmeSecret = regexp.MustCompile(`kubectl create secret generic (\S+)((?: +\\?\n? *--from-file=\S+)+)`)

func load(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{},
		pvcs: map[string]*corev1.PersistentVolumeClaim{}, secretKeys: map[string][]string{}}
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			m.add(t, fmt.Sprintf("%s document %d", f, i+1), []byte(doc))
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	cmd := readmeSecret.FindSubmatch(readme)
	if cmd == nil {
		t.Fatal("README.md shows no `kubectl create secret generic NAME --from-file=KEY=FILE ...`")
	}
	for _, ff := range regexp.MustCompile(`--from-file=([^=\s]+)=`).FindAllSubmatch(cmd[2], -1) {
		m.secretKeys[string(cmd[1])] = append(m.secretKeys[string(cmd[1])], string(ff[1]))
	}
	return m
}

// add decodes one YAML document strictly into its API type.
func (m *manifests) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var tm struct{ APIVersion, Kind string }
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if tm.APIVersion == "" && tm.Kind == "" {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(string(doc), "")) != "" {
			t.Fatalf("%s: no apiVersion and kind", where)
		}
		return // comments only
	}
	strict := func(obj any) {
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			t.Fatalf("%s (%s %s): %v", where, tm.APIVersion, tm.Kind, err)
		}
	}
	unique := func(kind, name string, seen bool) {
		if name == "" {
			t.Fatalf("%s: %s without metadata.name", where, kind)
		}
		if seen {
			t.Fatalf("%s: a second %s %q", where, kind, name)
		}
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Service":
		var s corev1.Service
		strict(&s)
		_, seen := m.services[s.Name]
		unique("Service", s.Name, seen)
		m.services[s.Name] = &s
	case "v1 ConfigMap":
		var c corev1.ConfigMap
		strict(&c)
		_, seen := m.configMaps[c.Name]
		unique("ConfigMap", c.Name, seen)
		m.configMaps[c.Name] = &c
	case "v1 PersistentVolumeClaim":
		var p corev1.PersistentVolumeClaim
		strict(&p)
		_, seen := m.pvcs[p.Name]
		unique("PersistentVolumeClaim", p.Name, seen)
		m.pvcs[p.Name] = &p
	case "v1 Secret":
		var s corev1.Secret
		strict(&s)
		_, seen := m.secretKeys[s.Name]
		unique("Secret", s.Name, seen)
		for k := range s.Data {
			m.secretKeys[s.Name] = append(m.secretKeys[s.Name], k)
		}
	case "apps/v1 Deployment":
		var d appsv1.Deployment
		strict(&d)
		unique("Deployment", d.Name, m.workload("Deployment/"+d.Name) != nil)
		m.workloads = append(m.workloads, &workload{ref: "Deployment/" + d.Name, replicas: deref(d.Spec.Replicas),
			selector: matchLabels(t, where, d.Spec.Selector.MatchLabels, len(d.Spec.Selector.MatchExpressions)), template: d.Spec.Template})
	case "apps/v1 StatefulSet":
		var s appsv1.StatefulSet
		strict(&s)
		unique("StatefulSet", s.Name, m.workload("StatefulSet/"+s.Name) != nil)
		m.workloads = append(m.workloads, &workload{ref: "StatefulSet/" + s.Name, replicas: deref(s.Spec.Replicas),
			selector: matchLabels(t, where, s.Spec.Selector.MatchLabels, len(s.Spec.Selector.MatchExpressions)),
			template: s.Spec.Template, serviceName: s.Spec.ServiceName, claims: s.Spec.VolumeClaimTemplates})
	default:
		t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
	}
}

func deref(p *int32) int32 {
	if p == nil {
		return 1
	}
	return *p
}

func matchLabels(t *testing.T, where string, l map[string]string, exprs int) map[string]string {
	t.Helper()
	if len(l) == 0 || exprs > 0 {
		t.Fatalf("%s: want a selector of matchLabels only", where)
	}
	return l
}

func (m *manifests) workload(ref string) *workload {
	for _, w := range m.workloads {
		if w.ref == ref {
			return w
		}
	}
	return nil
}

// selects reports whether selector matches labels.
func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// containerPort returns the port of c that p names (by name or number).
func containerPort(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func TestManifestsDecodeStrictly(t *testing.T) {
	m := load(t)
	for _, want := range []string{"Deployment/ringtrain-coordinator", "StatefulSet/ringtrain-worker", "StatefulSet/ringtrain-etcd"} {
		if m.workload(want) == nil {
			t.Errorf("no %s", want)
		}
	}
	for _, s := range []string{"ringtrain-etcd", "ringtrain-coordinator", "ringtrain-worker"} {
		if m.services[s] == nil {
			t.Errorf("no Service %s", s)
		}
	}
	if m.configMaps["ringtrain-job"] == nil || m.pvcs["ringtrain-run"] == nil || m.pvcs["ringtrain-data"] == nil {
		t.Error("want ConfigMap ringtrain-job and PersistentVolumeClaims ringtrain-run, ringtrain-data")
	}
	if !slices.Equal(m.secretKeys["ringtrain-tls"], []string{"ca.crt", "node.crt", "node.key"}) {
		t.Errorf("README's TLS Secret ringtrain-tls has keys %v, want ca.crt node.crt node.key", m.secretKeys["ringtrain-tls"])
	}
}

func TestSelectorsAndServices(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads {
		if !selects(w.selector, w.template.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", w.ref, w.selector, w.template.Labels)
		}
		if w.serviceName != "" {
			s := m.services[w.serviceName]
			switch {
			case s == nil:
				t.Errorf("%s: serviceName %s is no Service", w.ref, w.serviceName)
			case s.Spec.ClusterIP != corev1.ClusterIPNone:
				t.Errorf("%s: Service %s is not headless", w.ref, w.serviceName)
			case !selects(s.Spec.Selector, w.template.Labels):
				t.Errorf("%s: its Service %s does not select its pods", w.ref, w.serviceName)
			}
		}
	}
	for name, s := range m.services {
		var matched []*workload
		for _, w := range m.workloads {
			if selects(s.Spec.Selector, w.template.Labels) {
				matched = append(matched, w)
			}
		}
		if len(matched) != 1 {
			t.Errorf("Service %s selects %d workloads, want 1", name, len(matched))
			continue
		}
		w := matched[0]
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			found := false
			for _, c := range w.template.Spec.Containers {
				if cp, ok := containerPort(c, target); ok {
					found = true
					if p.Name != "" && cp.Name != "" && cp.Name != p.Name {
						t.Errorf("Service %s port %s targets container port %s", name, p.Name, cp.Name)
					}
				}
			}
			if !found {
				t.Errorf("Service %s port %s: target %s is no container port of %s", name, p.Name, target.String(), w.ref)
			}
		}
	}
}

func TestPodSpecs(t *testing.T) {
	m := load(t)
	for _, w := range m.workloads {
		spec := w.template.Spec
		volumes := map[string]corev1.Volume{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = v
		}
		claims := map[string]bool{}
		for _, c := range w.claims {
			claims[c.Name] = true
		}
		used := map[string]bool{}
		for _, v := range spec.Volumes {
			switch {
			case v.ConfigMap != nil:
				cm := m.configMaps[v.ConfigMap.Name]
				if cm == nil {
					t.Errorf("%s volume %s: no ConfigMap %s", w.ref, v.Name, v.ConfigMap.Name)
					continue
				}
				for _, it := range v.ConfigMap.Items {
					if _, ok := cm.Data[it.Key]; !ok {
						t.Errorf("%s volume %s: ConfigMap %s has no key %s", w.ref, v.Name, cm.Name, it.Key)
					}
				}
			case v.Secret != nil:
				keys, ok := m.secretKeys[v.Secret.SecretName]
				if !ok {
					t.Errorf("%s volume %s: no Secret %s", w.ref, v.Name, v.Secret.SecretName)
				}
				for _, it := range v.Secret.Items {
					if !slices.Contains(keys, it.Key) {
						t.Errorf("%s volume %s: Secret %s has no key %s", w.ref, v.Name, v.Secret.SecretName, it.Key)
					}
				}
				if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode&0o007 != 0 {
					t.Errorf("%s volume %s: key files readable by others", w.ref, v.Name)
				}
			case v.PersistentVolumeClaim != nil:
				if m.pvcs[v.PersistentVolumeClaim.ClaimName] == nil {
					t.Errorf("%s volume %s: no PersistentVolumeClaim %s", w.ref, v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			default:
				t.Errorf("%s volume %s: not a ConfigMap, Secret or PersistentVolumeClaim", w.ref, v.Name)
			}
		}
		for _, c := range spec.Containers {
			where := w.ref + " container " + c.Name
			env := map[string]bool{}
			for _, e := range c.Env {
				env[e.Name] = true
				if vf := e.ValueFrom; vf != nil {
					if vf.FieldRef != nil && !slices.Contains([]string{"metadata.name", "metadata.namespace", "status.podIP"}, vf.FieldRef.FieldPath) {
						t.Errorf("%s env %s: fieldRef %s", where, e.Name, vf.FieldRef.FieldPath)
					}
					if r := vf.ConfigMapKeyRef; r != nil && (m.configMaps[r.Name] == nil || m.configMaps[r.Name].Data[r.Key] == "") {
						t.Errorf("%s env %s: no ConfigMap key %s/%s", where, e.Name, r.Name, r.Key)
					}
					if r := vf.SecretKeyRef; r != nil && !slices.Contains(m.secretKeys[r.Name], r.Key) {
						t.Errorf("%s env %s: no Secret key %s/%s", where, e.Name, r.Name, r.Key)
					}
				}
			}
			for _, a := range c.Args {
				for _, ref := range regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`).FindAllStringSubmatch(a, -1) {
					if !env[ref[1]] {
						t.Errorf("%s: argument %q uses $(%s), not in its env", where, a, ref[1])
					}
				}
			}
			mounts := map[string]bool{}
			for _, vm := range c.VolumeMounts {
				if _, ok := volumes[vm.Name]; !ok && !claims[vm.Name] {
					t.Errorf("%s: volumeMount %s names no volume", where, vm.Name)
				}
				if mounts[vm.MountPath] {
					t.Errorf("%s: two volumes at %s", where, vm.MountPath)
				}
				mounts[vm.MountPath], used[vm.Name] = true, true
			}
			for name, p := range map[string]*corev1.Probe{"readinessProbe": c.ReadinessProbe, "livenessProbe": c.LivenessProbe} {
				switch {
				case p == nil:
					t.Errorf("%s: no %s", where, name)
				case p.HTTPGet != nil:
					if _, ok := containerPort(c, p.HTTPGet.Port); !ok || p.HTTPGet.Path == "" {
						t.Errorf("%s %s: GET %s on %s, not a port of the container", where, name, p.HTTPGet.Path, p.HTTPGet.Port.String())
					}
				case p.TCPSocket != nil:
					if _, ok := containerPort(c, p.TCPSocket.Port); !ok {
						t.Errorf("%s %s: port %s is not a port of the container", where, name, p.TCPSocket.Port.String())
					}
				default:
					t.Errorf("%s %s: want httpGet or tcpSocket", where, name)
				}
			}
			r := c.Resources
			if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
				t.Errorf("%s: want cpu and memory requests and a memory limit, have %v / %v", where, r.Requests, r.Limits)
			}
			if c.Image != "ringtrain:latest" {
				t.Errorf("%s: image %s, want ringtrain:latest", where, c.Image)
			}
		}
		for name := range volumes {
			if !used[name] {
				t.Errorf("%s: volume %s mounted nowhere", w.ref, name)
			}
		}
	}
}

// TestCommandLines checks each container's ringtrain arguments against the
// other manifests: files under the right mounts, listen ports declared,
// etcd and advertise addresses served by the Services, the job's data under
// the data mount, and (building ringtrain) that every flag exists.
func TestCommandLines(t *testing.T) {
	m := load(t)
	flagsOf := ringtrainFlags(t)
	var dataMounts []string // where coordinator and workers read the data
	for _, w := range m.workloads {
		for _, c := range w.template.Spec.Containers {
			where := w.ref + " container " + c.Name
			if len(c.Command) > 0 || len(c.Args) == 0 {
				t.Errorf("%s: want the image's entrypoint with args", where)
				continue
			}
			cmd, flags := c.Args[0], map[string]string{}
			for _, a := range c.Args[1:] {
				k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
				if !ok || !strings.HasPrefix(a, "--") {
					t.Errorf("%s: argument %q, want --flag=value", where, a)
					continue
				}
				flags[k] = v
				if known := flagsOf(cmd); known != nil && !known[k] {
					if pending[cmd+" --"+k] {
						t.Logf("%s: --%s is not yet a flag of ringtrain %s (pending)", where, k, cmd)
					} else {
						t.Errorf("%s: ringtrain %s has no flag --%s", where, cmd, k)
					}
				}
			}
			if slices.Contains([]string{"coordinator", "worker"}, cmd) {
				for _, vm := range c.VolumeMounts {
					if vm.Name == "data" {
						dataMounts = append(dataMounts, vm.MountPath)
					}
				}
			}
			tlsOn := 0
			for _, f := range []string{"tls-ca", "tls-cert", "tls-key"} {
				if flags[f] != "" {
					tlsOn++
				}
			}
			if tlsOn != 3 {
				t.Errorf("%s: %d of --tls-ca, --tls-cert, --tls-key; want all three", where, tlsOn)
			}
			for f, v := range flags {
				switch f {
				case "tls-ca", "tls-cert", "tls-key", "job":
					m.checkFile(t, w, c, f, v, false)
				case "run-dir", "data-dir":
					m.checkFile(t, w, c, f, v, true)
				case "listen", "metrics-listen", "listen-client":
					u := v
					if strings.Contains(v, "://") {
						pu, err := url.Parse(v)
						if err != nil {
							t.Errorf("%s --%s=%s: %v", where, f, v, err)
							continue
						}
						u = pu.Host
					}
					_, port, err := net.SplitHostPort(u)
					n, _ := strconv.Atoi(port)
					if _, ok := containerPort(c, intstr.FromInt32(int32(n))); err != nil || !ok {
						t.Errorf("%s --%s=%s: port %s is not a container port", where, f, v, port)
					}
				case "etcd", "advertise-client":
					for _, e := range strings.Split(v, ",") {
						u, err := url.Parse(e)
						if err != nil || u.Scheme != "https" {
							t.Errorf("%s --%s=%s: want https URLs", where, f, v)
							continue
						}
						m.checkServed(t, where, f, u.Host, "etcd", nil)
					}
				case "advertise":
					m.checkServed(t, where, f, v, cmd, w)
				}
			}
			if cmd == "coordinator" && (flags["job"] == "" || flags["run-dir"] == "") {
				t.Errorf("%s: want --job and --run-dir", where)
			}
		}
	}
	j := m.job(t)
	if ws := m.workload("StatefulSet/ringtrain-worker"); ws != nil && (int(ws.replicas) < j.Workers.Min || int(ws.replicas) > j.Workers.Max) {
		t.Errorf("%d worker replicas, the job wants %d..%d", ws.replicas, j.Workers.Min, j.Workers.Max)
	}
	for _, mp := range dataMounts {
		for _, glob := range []string{j.Data.Train, j.Data.Val} {
			if !strings.HasPrefix(glob, mp+"/") {
				t.Errorf("job data %s is not under the data mount %s", glob, mp)
			}
		}
	}
	if len(dataMounts) < 2 {
		t.Errorf("data mounted in %d of coordinator and worker, want both", len(dataMounts))
	}
}

// pending are flags the manifests use that ringtrain is getting (none
// now: add "command --flag" while a manifest runs ahead of the code).
var pending = map[string]bool{}

// checkFile checks that the file or directory of a flag lies in a volume
// mount of c and, for Secret and ConfigMap volumes, is one of their keys;
// writable wants a writable persistent volume.
func (m *manifests) checkFile(t *testing.T, w *workload, c corev1.Container, flag, p string, writable bool) {
	t.Helper()
	where := fmt.Sprintf("%s container %s --%s=%s", w.ref, c.Name, flag, p)
	for _, vm := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path.Clean(p), vm.MountPath+"/")
		if !ok && !(writable && path.Clean(p) == vm.MountPath) { // a directory may be the mount itself
			continue
		}
		v := volumeOf(w, vm.Name)
		switch {
		case v == nil: // a volumeClaimTemplate
			if writable && vm.ReadOnly {
				t.Errorf("%s: mount %s is read-only", where, vm.MountPath)
			}
		case v.Secret != nil:
			if writable || !slices.Contains(m.secretKeys[v.Secret.SecretName], rel) {
				t.Errorf("%s: %s is no key of Secret %s", where, rel, v.Secret.SecretName)
			}
		case v.ConfigMap != nil:
			cm := m.configMaps[v.ConfigMap.Name]
			key := rel
			for _, it := range v.ConfigMap.Items {
				if it.Path == rel {
					key = it.Key
				}
			}
			if _, ok := cm.Data[key]; writable || cm == nil || !ok {
				t.Errorf("%s: %s is no key of ConfigMap %s", where, rel, v.ConfigMap.Name)
			}
		case v.PersistentVolumeClaim != nil:
			if writable && (vm.ReadOnly || v.PersistentVolumeClaim.ReadOnly) {
				t.Errorf("%s: mount %s is read-only", where, vm.MountPath)
			}
		}
		return
	}
	t.Errorf("%s: not under any volume mount", where)
}

func volumeOf(w *workload, name string) *corev1.Volume {
	for i, v := range w.template.Spec.Volumes {
		if v.Name == name {
			return &w.template.Spec.Volumes[i]
		}
	}
	return nil
}

// checkServed checks that host:port is served by a Service of the set whose
// pods run ringtrain cmd: a Service name, or $(POD_NAME).svc for the pods
// of a StatefulSet w with that headless Service.
func (m *manifests) checkServed(t *testing.T, where, flag, hostport, cmd string, w *workload) {
	t.Helper()
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Errorf("%s --%s=%s: %v", where, flag, hostport, err)
		return
	}
	svcName := host
	if pod, svc, ok := strings.Cut(host, "."); ok {
		if pod != "$(POD_NAME)" || w == nil || w.serviceName != svc {
			t.Errorf("%s --%s=%s: want $(POD_NAME).%s, the StatefulSet's service", where, flag, hostport, w.serviceName)
			return
		}
		svcName = svc
	}
	s := m.services[svcName]
	if s == nil {
		t.Errorf("%s --%s=%s: no Service %s", where, flag, hostport, svcName)
		return
	}
	n, _ := strconv.Atoi(port)
	served := false
	for _, p := range s.Spec.Ports {
		served = served || int(p.Port) == n
	}
	var runs bool
	for _, sw := range m.workloads {
		if selects(s.Spec.Selector, sw.template.Labels) {
			for _, c := range sw.template.Spec.Containers {
				runs = runs || (len(c.Args) > 0 && c.Args[0] == cmd)
			}
		}
	}
	if !served || !runs {
		t.Errorf("%s --%s=%s: Service %s has no port %d or does not select ringtrain %s pods", where, flag, hostport, svcName, n, cmd)
	}
}

// job parses the job file of the ConfigMap.
func (m *manifests) job(t *testing.T) *job.Job {
	t.Helper()
	cm := m.configMaps["ringtrain-job"]
	if cm == nil {
		t.Fatal("no ConfigMap ringtrain-job")
	}
	j, err := job.Parse([]byte(cm.Data["job.yaml"]), "ConfigMap ringtrain-job job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// ringtrainFlags builds ringtrain and returns, per command, the flags its
// --help lists (nil for -short, which skips the build).
func ringtrainFlags(t *testing.T) func(cmd string) map[string]bool {
	t.Helper()
	if testing.Short() {
		return func(string) map[string]bool { return nil }
	}
	bin := filepath.Join(t.TempDir(), "ringtrain")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/ringtrain").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cache := map[string]map[string]bool{}
	return func(cmd string) map[string]bool {
		if f, ok := cache[cmd]; ok {
			return f
		}
		out, err := exec.Command(bin, cmd, "--help").CombinedOutput()
		if err != nil {
			t.Fatalf("ringtrain %s --help: %v\n%s", cmd, err, out)
		}
		_, opts, _ := bytes.Cut(out, []byte("\nFlags:\n"))
		f := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z0-9-]+)`).FindAllSubmatch(opts, -1) {
			f[string(m[1])] = true
		}
		cache[cmd] = f
		return f
	}
}
