package tlsconf

import (
	"context"
	"errors"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Credentials returns gRPC transport credentials for servers and clients:
// mutual TLS with the node's current files, or plaintext with TLS off.
func (n *Node) Credentials() credentials.TransportCredentials {
	if !n.Enabled() {
		return insecure.NewCredentials()
	}
	return creds{n}
}

// ServerOption is the grpc.NewServer option for the node's credentials: with
// TLS on, a client must present a certificate signed by the CA.
func (n *Node) ServerOption() grpc.ServerOption { return grpc.Creds(n.Credentials()) }

// DialOption is the grpc.NewClient option for the node's credentials: with
// TLS on, the client presents the node certificate and verifies that the
// server's certificate is signed by the CA and names the host (DNS name or IP)
// of the address dialled.
func (n *Node) DialOption() grpc.DialOption { return grpc.WithTransportCredentials(n.Credentials()) }

// creds builds each handshake's TLS config from the files in use at that
// moment and leaves the handshake itself to grpc's TLS credentials.
type creds struct{ n *Node }

var _ credentials.TransportCredentials = creds{}

func (c creds) ClientHandshake(ctx context.Context, authority string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return credentials.NewTLS(c.n.material().clientConfig()).ClientHandshake(ctx, authority, raw)
}

func (c creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := credentials.NewTLS(c.n.material().serverConfig()).ServerHandshake(raw)
	switch {
	case errors.Is(err, io.EOF): // closed before a handshake: a port probe
		c.n.log.Debug("tls: connection closed before the handshake", "remote", raw.RemoteAddr().String())
	case err != nil:
		c.n.log.Warn("tls: connection refused", "remote", raw.RemoteAddr().String(), "err", err)
	}
	return conn, info, err
}

func (c creds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (c creds) Clone() credentials.TransportCredentials { return c }

// OverrideServerName is deprecated in grpc and not supported: the name
// verified is the host of the address dialled.
func (c creds) OverrideServerName(string) error {
	return errors.New("tlsconf: OverrideServerName is not supported")
}
