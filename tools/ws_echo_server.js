// ws_echo_server.js: the peer row of `make bench-server` (doc/akload.md).
// An echo server on npm's `ws`, the one users would otherwise deploy, in its
// strongest fair configuration: one process per server thread (node's
// cluster module, the workers share the listening socket), permessage-deflate
// off (akws does not compress either), and every message echoed with the type
// it came with.
//
//   node ws_echo_server.js --port P [--workers N]
//
// Listens on 127.0.0.1 only; prints `listening on 127.0.0.1:P` once every
// worker listens; SIGINT/SIGTERM stop it (exit 0). Needs `ws` on NODE_PATH:
//   npm install --prefix build/npm ws@8   (then NODE_PATH=build/npm/node_modules)
'use strict';
const cluster = require('cluster');

function arg(name, dflt) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? Number(process.argv[i + 1]) : dflt;
}
const port = arg('--port', 0);
const workers = arg('--workers', 1);
if (!(port > 0 && port < 65536) || !(workers >= 1 && workers <= 1024)) {
  process.stderr.write('usage: node ws_echo_server.js --port P [--workers N]\n');
  process.exit(2);
}

if (cluster.isPrimary && workers > 1) {
  let up = 0;
  for (let i = 0; i < workers; i++) cluster.fork();
  cluster.on('message', (w, m) => {
    if (m === 'listening' && ++up === workers) console.log(`listening on 127.0.0.1:${port}`);
  });
  const stop = () => {
    for (const id in cluster.workers) cluster.workers[id].kill('SIGTERM');
    setTimeout(() => process.exit(0), 200);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
} else {
  const { WebSocketServer } = require('ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false,
                                    clientTracking: false, backlog: 4096 });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    ws.on('error', () => {});
  });
  wss.on('listening', () => {
    if (cluster.isWorker) process.send('listening');
    else console.log(`listening on 127.0.0.1:${port}`);
  });
  const stop = () => process.exit(0);
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
