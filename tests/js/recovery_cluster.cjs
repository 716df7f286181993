// Connection state recovery across two gosf workers, with the stock
// socket.io-client v4 and no sticky sessions.
//
//   node recovery_cluster.cjs <balancer url> <first worker url> <second worker url> [hang]
//
// The recovering client goes through a round-robin balancer, over websocket
// only: its first connection lands on the first worker, its reconnection on
// the second. Two other clients, one on each worker directly, broadcast
// while it is away. Prints one JSON object of what the client observed; the
// assertions live in tests/interop/test_recovery_cluster.py.
//
// With "hang", Redis is frozen (the test paused it): the client connects,
// drops and comes back on the other worker with nobody broadcasting, and
// reports how long the reconnection took.
"use strict";

const { io } = require("socket.io-client");

const [balancer, firstUrl, secondUrl, mode] = process.argv.slice(2);
const RUN_LIMIT_MS = 30000;

setTimeout(() => {
  console.error("recovery scenario timed out");
  process.exit(3);
}, RUN_LIMIT_MS).unref();

function open(url, opts = {}) {
  const base = { transports: ["websocket"], forceNew: true, reconnection: false, timeout: 5000 };
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

// Resolves once every number of ``wanted`` is among the news ``socket`` received
// (``news``, which its own "news" listener fills first).
function arrived(socket, news, wanted) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`news ${wanted} did not arrive`)), 5000);
    const check = () => {
      if (wanted.every((n) => news.some((item) => item.n === n))) {
        clearTimeout(timer);
        socket.off("news", check);
        resolve();
      }
    };
    socket.on("news", check);
    check();
  });
}

async function connected(socket) {
  if (!socket.connected) await once(socket, "connect");
  return socket;
}

// Redis hangs: the other worker cannot fetch the session, and must not hang.
async function hang() {
  const socket = await connected(
    open(balancer, { reconnection: true, reconnectionDelay: 300, randomizationFactor: 0 })
  );
  const firstId = socket.id;
  const [before] = await ack(socket, "whoami");
  await ack(socket, "join", "room");
  await ack(socket, "remember", "kept");
  const away = once(socket, "disconnect");
  socket.io.engine.close();
  await away;
  const start = Date.now();
  await once(socket, "connect");
  const seconds = (Date.now() - start) / 1000;
  const [after] = await ack(socket, "whoami");
  const recall = (await ack(socket, "recall"))[0];
  socket.close();
  const out = { recovered: socket.recovered, sameId: socket.id === firstId, seconds };
  Object.assign(out, { movedWorker: before !== after, recall });
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

async function main() {
  if (mode === "hang") return hang();
  const news = [];
  const socket = await connected(
    open(balancer, { reconnection: true, reconnectionDelay: 300, randomizationFactor: 0 })
  );
  socket.on("news", (n, offset) => news.push({ n, offset: typeof offset }));
  const firstId = socket.id;
  const [before] = await ack(socket, "whoami");
  await ack(socket, "join", "room");
  await ack(socket, "remember", "kept");
  const onFirst = await connected(open(firstUrl));
  const onSecond = await connected(open(secondUrl));
  await ack(onSecond, "shout", "room", 0);
  // A round trip on this socket after the shout's ack: 0 has been written out to it.
  await ack(socket, "whoami");
  const away = once(socket, "disconnect");
  socket.io.engine.close(); // the transport goes away: no Socket.IO DISCONNECT
  const [reason] = await away;
  const back = once(socket, "connect");
  for (let n = 1; n <= 3; n++) await ack(onSecond, "shout", "room", n);
  for (let n = 4; n <= 5; n++) await ack(onFirst, "shout", "room", n);
  await back;
  const recovered = socket.recovered;
  const sameId = socket.id === firstId;
  const [after] = await ack(socket, "whoami");
  const recall = (await ack(socket, "recall"))[0];
  // A new broadcast from each worker reaches it without joining again; once
  // both are here, a round trip proves nothing else was queued for it.
  const live = arrived(socket, news, [6, 7]);
  await ack(onFirst, "shout", "room", 6);
  await ack(onSecond, "shout", "room", 7);
  await live;
  await ack(socket, "whoami");
  socket.close();
  onFirst.close();
  onSecond.close();
  const out = { reason, recovered, sameId, movedWorker: before !== after, news, recall };
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
