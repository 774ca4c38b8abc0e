// The persisting peer for bench/ws: the same room relay as relay.js, but every chat message is
// stored before it is broadcast, as Yilian's /ws does. Storage is SQLite through better-sqlite3
// (WAL, synchronous=FULL): the messages that arrived during one event-loop turn are written in
// one transaction, each with its room's next seq, and only after that commit are they sent to the
// room. Usage: node relay-persist.js PORT DB_FILE
'use strict';
const Database = require('better-sqlite3');
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 8090);
const db = new Database(process.argv[3] || 'relay.db');
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`CREATE TABLE IF NOT EXISTS chat (
  room TEXT NOT NULL, seq INTEGER NOT NULL, sender INTEGER NOT NULL, text TEXT NOT NULL,
  at INTEGER NOT NULL, PRIMARY KEY (room, seq))`);
const insert = db.prepare('INSERT INTO chat (room, seq, sender, text, at) VALUES (?, ?, ?, ?, ?)');
const nextSeq = new Map();  // room id -> next seq (rooms start empty in each run)
const storeAll = db.transaction((batch) => {
  for (const m of batch) insert.run(m.room, m.seq, m.sender, m.text, m.at);
});

const rooms = new Map();  // room id -> Set of sockets
let pending = [];         // chat received this turn, not yet stored
let nextConnection = 0;

function flush() {
  const batch = pending;
  pending = [];
  const now = Date.now();
  for (const m of batch) {
    m.seq = nextSeq.get(m.room) || 1;
    nextSeq.set(m.room, m.seq + 1);
    m.at = now;
  }
  try {
    storeAll(batch);
  } catch (e) {
    for (const m of batch) m.from.send('{"type":"error","code":"not_stored"}');
    return;
  }
  for (const m of batch) {
    const out = JSON.stringify({ type: 'chat', consult: m.room, seq: m.seq, text: m.text });
    const members = rooms.get(m.room);
    if (members) for (const peer of members) peer.send(out);
  }
}

const wss = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws', maxPayload: 64 * 1024 });
wss.on('connection', (ws) => {
  let room = null;
  const id = ++nextConnection;
  ws.on('message', (data) => {
    let m;
    try { m = JSON.parse(data); } catch { ws.send('{"type":"error","code":"bad_message"}'); return; }
    if (m.type === 'join') {
      room = String(m.consult);
      if (!rooms.has(room)) rooms.set(room, new Set());
      rooms.get(room).add(ws);
      ws.send(JSON.stringify({ type: 'joined', consult: m.consult }));
    } else if (m.type === 'chat' && room !== null) {
      if (pending.length === 0) setImmediate(flush);
      pending.push({ room, sender: id, text: String(m.text), from: ws });
    }
  });
  ws.on('close', () => { if (room !== null) rooms.get(room).delete(ws); });
});
wss.on('listening', () => console.log(`relay listening on ${port}`));
