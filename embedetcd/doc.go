// Package embedetcd runs the real etcd server inside a ringtrain process:
// `ringtrain etcd` for clusters that have no etcd of their own, `ringtrain
// local`, and the cluster tests.
//
//	e, err := embedetcd.Start(embedetcd.Config{DataDir: dir}) // free loopback ports by default
//	defer e.Close()
//	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.ClientURL}})
package embedetcd
