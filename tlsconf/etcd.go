package tlsconf

import (
	"crypto/tls"
	"net/url"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"google.golang.org/grpc"
)

// ClientTLSConfig returns a client *tls.Config for the node: it presents the
// certificate current at each handshake and verifies the server against the
// CA as it is now (a CA replaced later is not seen by this config; the gRPC
// credentials of DialOption and ConfigureEtcdClient see it). Nil with TLS off.
func (n *Node) ClientTLSConfig() *tls.Config {
	if !n.Enabled() {
		return nil
	}
	cfg := n.material().clientConfig()
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		c := n.material().cert
		return &c, nil
	}
	return cfg
}

// ConfigureEtcdClient makes an etcd v3 client config use the node's TLS: the
// client presents the node certificate and verifies the etcd server against
// the CA, loading the files again for every new connection. The endpoints'
// scheme (http:// or https://) does not matter then. No change with TLS off.
func (n *Node) ConfigureEtcdClient(cfg *clientv3.Config) {
	if !n.Enabled() {
		return
	}
	cfg.TLS = n.ClientTLSConfig()
	// clientv3 applies Config.DialOptions after the credentials it makes from
	// Config.TLS, so these (which also follow a replaced CA) are the ones used.
	cfg.DialOptions = append(cfg.DialOptions, n.DialOption())
}

// ConfigureEtcdServer makes an embedded etcd server (cfg as given to
// embed.StartEtcd, its client URLs already set) serve clients over TLS only to
// a client certificate signed by the CA. The client URLs become https. etcd
// would read the CA file once at start; here its client port is gRPC only,
// with the node's credentials, so replaced files (CA included) are used for
// new connections as on every other ringtrain server. etcd's HTTP endpoints
// (/health, /metrics, /version) move to an https port on 127.0.0.1 chosen by
// the system, and the JSON gateway is off. No change with TLS off.
func (n *Node) ConfigureEtcdServer(cfg *embed.Config) {
	if !n.Enabled() {
		return
	}
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: n.files.Cert, KeyFile: n.files.Key, TrustedCAFile: n.files.CA, ClientCertAuth: true,
	}
	cfg.ListenClientUrls = httpsURLs(cfg.ListenClientUrls)
	cfg.AdvertiseClientUrls = httpsURLs(cfg.AdvertiseClientUrls)
	cfg.ListenClientHttpUrls = []url.URL{{Scheme: "https", Host: "127.0.0.1:0"}}
	cfg.EnableGRPCGateway = false
	// Applied after etcd's own grpc.Creds, so this one is used.
	cfg.GRPCAdditionalServerOptions = append(cfg.GRPCAdditionalServerOptions, grpc.Creds(n.Credentials()))
}

// httpsURLs returns us with http:// made https://.
func httpsURLs(us []url.URL) []url.URL {
	out := make([]url.URL, len(us))
	for i, u := range us {
		if u.Scheme == "http" {
			u.Scheme = "https"
		}
		out[i] = u
	}
	return out
}
