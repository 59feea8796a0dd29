// interop_ws.js - akws against npm's ws client: echo of text and binary at
// 0/125/126/65535/65536 bytes, a fragmented message, ping/pong, close 1000,
// and a room of three. Usage: node interop_ws.js PORT (run by run_node.py).
'use strict';
const WebSocket = require('ws');
const port = process.argv[2];
const url = (p) => `ws://127.0.0.1:${port}${p}`;
const fail = (m) => { console.error('FAIL: ' + m); process.exit(1); };
setTimeout(() => fail('timed out'), 120000).unref();

function open(path) {
  return new Promise((res, rej) => {
    const ws = new WebSocket(url(path), { perMessageDeflate: false, maxPayload: 1 << 24 });
    ws.once('open', () => res(ws));
    ws.once('error', rej);
  });
}
function next(ws) {
  return new Promise((res) => ws.once('message', (data, isBinary) => res({ data, isBinary })));
}

(async () => {
  const ws = await open('/echo');
  for (const n of [0, 125, 126, 65535, 65536]) {
    const text = 'é'.repeat(n >> 1) + 'a'.repeat(n & 1);
    let p = next(ws);
    ws.send(text);
    let m = await p;
    if (m.isBinary || m.data.toString() !== text) fail(`text echo ${n}`);
    const bin = Buffer.alloc(n, 0xa5);
    p = next(ws);
    ws.send(bin);
    m = await p;
    if (!m.isBinary || !Buffer.from(m.data).equals(bin)) fail(`binary echo ${n}`);
  }
  // Fragmented: fin false then true.
  let p = next(ws);
  ws.send('frag', { fin: false });
  ws.send('ment', { fin: true });
  let m = await p;
  if (m.data.toString() !== 'fragment') fail('fragmented echo');
  const pong = new Promise((res) => ws.once('pong', res));
  ws.ping('hello');
  if ((await pong).toString() !== 'hello') fail('pong payload');
  const closed = new Promise((res) => ws.once('close', (code) => res(code)));
  ws.close(1000, 'done');
  if ((await closed) !== 1000) fail('close code');

  const room = [await open('/room/node'), await open('/room/node'), await open('/room/node')];
  for (let i = 0; i < room.length; i++) {
    const got = room.map(next);
    room[i].send(`from ${i}`);
    for (const g of await Promise.all(got)) if (g.data.toString() !== `from ${i}`) fail('room');
  }
  await Promise.all(room.map((r) => { const c = new Promise((res) => r.once('close', res)); r.close(1000); return c; }));
  console.log('npm ws client: passed');
  process.exit(0);
})().catch((e) => fail(String(e)));
