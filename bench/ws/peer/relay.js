// The peer for bench/ws: a minimal room relay on the npm `ws` package. It speaks the subset
// of Yilian's /ws protocol the load generator uses (hello ignored; join puts the connection in
// a room; chat is relayed to everyone in the room, sender included), keeps nothing on disk.
'use strict';
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8090);
const rooms = new Map();  // room id -> Set of sockets
const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws', maxPayload: 64 * 1024 });

wss.on('connection', (ws) => {
  let room = null;
  ws.on('message', (data) => {
    let m;
    try { m = JSON.parse(data); } catch { ws.send('{"type":"error","code":"bad_message"}'); return; }
    if (m.type === 'join') {
      room = m.consult;
      if (!rooms.has(room)) rooms.set(room, new Set());
      rooms.get(room).add(ws);
      ws.send(JSON.stringify({ type: 'joined', consult: room }));
    } else if (m.type === 'chat' && room !== null) {
      const out = JSON.stringify({ type: 'chat', consult: room, text: m.text });
      for (const peer of rooms.get(room)) peer.send(out);
    }
  });
  ws.on('close', () => { if (room !== null) rooms.get(room).delete(ws); });
});
wss.on('listening', () => console.log(`relay listening on ${port}`));
