package embedetcd

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"

	"github.com/ringtrain/ringtrain/tlsconf"
)

// Config configures an embedded etcd server.
type Config struct {
	DataDir         string
	ListenClient    string // URL; empty: a free loopback port
	AdvertiseClient string // URL; empty: the listen URL
	ListenPeer      string // URL; empty: a free loopback port
	Name            string // default "ringtrain"
	LogLevel        string // etcd's zap level, default "panic" (errors reach Err)

	// TLS, when on, serves the client URLs over https to client
	// certificates signed by its CA only; nil: plaintext.
	TLS *tlsconf.Node
}

// Etcd is a running embedded etcd server.
type Etcd struct {
	e         *embed.Etcd
	ClientURL string
}

// Start starts a single-node etcd server and waits until it serves.
func Start(c Config) (*Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = c.DataDir
	if c.Name != "" {
		cfg.Name = c.Name
	} else {
		cfg.Name = "ringtrain"
	}
	cfg.LogLevel = c.LogLevel
	if cfg.LogLevel == "" {
		cfg.LogLevel = zapcore.PanicLevel.String()
	}
	listen, err := urlOrFree(c.ListenClient)
	if err != nil {
		return nil, fmt.Errorf("etcd --listen-client %q: %w", c.ListenClient, err)
	}
	peer, err := urlOrFree(c.ListenPeer)
	if err != nil {
		return nil, fmt.Errorf("etcd peer url %q: %w", c.ListenPeer, err)
	}
	adv := listen
	if c.AdvertiseClient != "" {
		if adv, err = url.Parse(c.AdvertiseClient); err != nil {
			return nil, fmt.Errorf("etcd --advertise-client %q: %w", c.AdvertiseClient, err)
		}
	}
	cfg.ListenClientUrls = []url.URL{*listen}
	cfg.AdvertiseClientUrls = []url.URL{*adv}
	cfg.ListenPeerUrls = []url.URL{*peer}
	cfg.AdvertisePeerUrls = []url.URL{*peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	c.TLS.ConfigureEtcdServer(cfg)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start etcd in %s: %w", c.DataDir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("etcd: %w", err)
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd in %s did not become ready within 60s", c.DataDir)
	}
	return &Etcd{e: e, ClientURL: cfg.AdvertiseClientUrls[0].String()}, nil
}

// Err reports a fatal server error.
func (e *Etcd) Err() <-chan error { return e.e.Err() }

// Close stops the server.
func (e *Etcd) Close() { e.e.Close() }

func urlOrFree(s string) (*url.URL, error) {
	if s != "" {
		return url.Parse(s)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	return url.Parse("http://" + addr)
}
