// Stock npm socket.io-client v4 sockets on both workers of a gosf cluster,
// waiting for what an emitter script sends (tests/apps/emit_script.py).
//
//   node emitter_clients.cjs <first worker url> <second worker url> <room>
//
// Two clients per worker; the first of each joins <room>. Prints "ready" once
// all are connected and joined, then waits until every client has the "news"
// event whose text is "all" and prints one JSON object: each client's worker,
// whether it joined, and the texts of the "news" events it got. The
// assertions live in tests/interop/test_cluster.py.
"use strict";

const { io } = require("socket.io-client");

const [first, second, room] = process.argv.slice(2);

setTimeout(() => {
  console.error("emitter clients timed out");
  process.exit(3);
}, 30000).unref();

function connect(url) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function call(socket, event, request) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), 8000);
    socket.emit(event, request, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

async function main() {
  const clients = [];
  for (const [worker, url] of [["first", first], ["second", second]]) {
    for (const joined of [true, false]) {
      const socket = await connect(url);
      const seen = { worker, joined, news: [] };
      seen.done = new Promise((resolve) => {
        socket.on("news", (message) => {
          seen.news.push(message.text);
          if (message.text === "all") resolve();
        });
      });
      if (joined) await call(socket, "join", { text: room });
      clients.push({ socket, seen });
    }
  }
  process.stdout.write("ready\n");
  await Promise.all(clients.map((client) => client.seen.done));
  const out = clients.map(({ seen }) => ({ worker: seen.worker, joined: seen.joined, news: seen.news }));
  clients.forEach(({ socket }) => socket.close());
  process.stdout.write(JSON.stringify({ clients: out }) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
