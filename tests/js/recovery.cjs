// Connection state recovery with the stock socket.io-client v4 against gosf.
//
//   node recovery.cjs <url> <transport> <limit in seconds>
//
// Prints one JSON object: scenario name -> what the client observed. The
// assertions live in tests/interop/test_recovery_npm.py; this script only
// reports, and exits non-zero if a scenario throws or the run exceeds its
// time limit.
"use strict";

const { io } = require("socket.io-client");

const [url, transport, limitText] = process.argv.slice(2);
const LIMIT_MS = Number(limitText) * 1000;
const RUN_LIMIT_MS = 30000;

setTimeout(() => {
  console.error("recovery scenarios timed out");
  process.exit(3);
}, RUN_LIMIT_MS).unref();

function open(opts = {}) {
  const base = { transports: [transport], forceNew: true, reconnection: false, timeout: 5000 };
  return io(url, Object.assign(base, opts));
}

function once(emitter, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event`)), 5000);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

function ack(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), 5000);
    socket.emit(event, ...args, (...reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

async function connected(socket) {
  if (!socket.connected) await once(socket, "connect");
  return socket;
}

// The recovery proper: drop, 5 broadcasts while away, reconnect on its own.
async function recovered() {
  const order = []; // what happened, in order, to check the broadcasts went out while away
  const news = [];
  // The reconnection delay leaves the other client time to broadcast while this one is away.
  const socket = await connected(
    open({ reconnection: true, reconnectionDelay: 300, randomizationFactor: 0 })
  );
  socket.on("news", (n, offset) => news.push({ n, offset: typeof offset }));
  const firstId = socket.id;
  await ack(socket, "join", "room");
  await ack(socket, "remember", "kept");
  const other = await connected(open());
  const away = once(socket, "disconnect");
  socket.io.engine.close(); // the transport goes away: no Socket.IO DISCONNECT
  const [reason] = await away;
  order.push("disconnect");
  const back = once(socket, "connect");
  for (let n = 1; n <= 5; n++) await ack(other, "shout", "room", n);
  order.push("broadcasts sent");
  await back;
  order.push("connect");
  const recoveredFlag = socket.recovered;
  const sameId = socket.id === firstId;
  const recall = (await ack(socket, "recall"))[0];
  await ack(other, "shout", "room", 6);
  // The ack of "shout" comes after the broadcast was queued for every member;
  // a round trip on this socket then proves it has been written out to it.
  await ack(socket, "recall");
  socket.close();
  other.close();
  return { reason, order, recovered: recoveredFlag, sameId, news, recall };
}

// A deliberate disconnect (a Socket.IO DISCONNECT) parks nothing.
async function deliberate() {
  const socket = await connected(open());
  const firstId = socket.id;
  await ack(socket, "remember", "lost");
  socket.disconnect();
  socket.connect();
  await connected(socket);
  const out = { recovered: socket.recovered, sameId: socket.id === firstId };
  out.recall = (await ack(socket, "recall"))[0];
  socket.close();
  return out;
}

// Away longer than max_disconnection_duration: a fresh session.
async function expired() {
  const socket = await connected(open());
  const firstId = socket.id;
  await ack(socket, "remember", "expired");
  await ack(socket, "join", "room");
  const away = once(socket, "disconnect");
  socket.io.engine.close();
  await away;
  await new Promise((resolve) => setTimeout(resolve, LIMIT_MS + 500)); // the limit itself
  socket.connect();
  await connected(socket);
  const out = { recovered: socket.recovered, sameId: socket.id === firstId };
  out.recall = (await ack(socket, "recall"))[0];
  socket.close();
  return out;
}

async function main() {
  const out = {};
  out.recovered = await recovered();
  out.deliberate = await deliberate();
  out.expired = await expired();
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
