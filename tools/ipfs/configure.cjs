// Makes a js-ipfs repo an offline, loopback-only node: the RPC API on 127.0.0.1:API_PORT, its
// gRPC server (which js-ipfs always starts) on 127.0.0.1:GRPC_PORT, no HTTP gateway, no swarm,
// no bootstrap peers, no delegates, no MDNS.
//   node configure.cjs REPO_DIR API_PORT GRPC_PORT
const fs = require("fs");
const [repo, api, grpc] = process.argv.slice(2);
const path = `${repo}/config`;
const c = JSON.parse(fs.readFileSync(path, "utf8"));
c.Addresses = { ...c.Addresses, API: `/ip4/127.0.0.1/tcp/${api}`, Gateway: [], RPC: `/ip4/127.0.0.1/tcp/${grpc}`, Swarm: [], Delegates: [] };
c.Bootstrap = [];
c.Discovery = { ...c.Discovery, MDNS: { Enabled: false }, webRTCStar: { Enabled: false } };
fs.writeFileSync(path, JSON.stringify(c, null, 2));
