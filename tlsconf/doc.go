// Package tlsconf is ringtrain's mutual TLS: every gRPC server (coordinator,
// worker peers) and the embedded etcd server require a client certificate
// signed by the cluster CA, and every client presents its own and verifies the
// server's name or IP against the same CA. See docs/tls.md.
//
// Usage, per process:
//
//  1. Register the flags: tlsconf.AddFlags(cmd.Flags(), &files) gives
//     --tls-ca, --tls-cert and --tls-key.
//  2. node, err := tlsconf.Load(files): all three empty means TLS off (node is
//     still usable and hands out plaintext credentials); some but not all set,
//     unreadable files, a key that does not match, an expired certificate or
//     one not signed by the CA are errors naming the flag and file.
//  3. gRPC servers: grpc.NewServer(node.ServerOption(), ...); gRPC clients:
//     grpc.NewClient(addr, node.DialOption(), ...).
//  4. etcd clients: node.ConfigureEtcdClient(&clientv3Cfg) before clientv3.New;
//     the embedded etcd server: node.ConfigureEtcdServer(&embedCfg) before
//     embed.StartEtcd.
//  5. node.WarnPlaintext(addrs...) logs one warning line when TLS is off and an
//     address is reachable from other machines.
//
// Rotation: on every new connection (server or client side) the three files
// are read again; when their bytes changed and form a consistent set (key
// matches certificate, certificate valid now and signed by the CA, usable for
// server and client auth) the new set is used from that connection on.
// Connections already open keep the keys they were made with. An inconsistent
// set (say the certificate is replaced but the key not yet) is not taken: the
// previous set stays in use and one warning is logged until the files agree.
//
// The certificate authority and node certificates themselves are made by NewCA
// and CA.Issue (behind `ringtrain certs`): ECDSA P-256, one key pair valid as
// TLS server and client.
package tlsconf
