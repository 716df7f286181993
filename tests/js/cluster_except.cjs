// Stock npm socket.io-client v4 sockets on two gosf workers sharing Redis: a room
// broadcast that leaves the members of another room out, from each worker.
//
//   node cluster_except.cjs <url of worker 1> <url of worker 2> <room> <muted room>
//
// On each worker one socket joins <room>, another joins <room> and <muted room>.
// A socket of each worker has <room> told a message except <muted room>, then
// an "end" message to the whole room: a worker's broadcasts arrive in order, so
// a socket with both "end"s has everything told before them. Prints one JSON
// object with what each socket was told; tests/interop/test_cluster.py asserts.
"use strict";

const { io } = require("socket.io-client");

const [first, second, room, muted] = process.argv.slice(2);

setTimeout(() => {
  console.error("cluster except timed out");
  process.exit(3);
}, 30000).unref();

function connect(url) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  socket.told = [];
  socket.ends = new Promise((resolve) => {
    socket.on("told", (message) => {
      socket.told.push(message.text);
      if (socket.told.filter((text) => text.startsWith("end")).length === 2) resolve();
    });
  });
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
  const [a, aMuted, b, bMuted] = await Promise.all(
    [first, first, second, second].map((url) => connect(url)),
  );
  for (const socket of [a, aMuted, b, bMuted]) await call(socket, "join", { text: room });
  for (const socket of [aMuted, bMuted]) await call(socket, "join", { text: muted });
  await call(a, "tell-room", { text: "from 1", body: { room, skip: [muted] } });
  await call(b, "tell-room", { text: "from 2", body: { room, skip: [muted] } });
  await call(a, "tell-room", { text: "end 1", body: { room } });
  await call(b, "tell-room", { text: "end 2", body: { room } });
  const all = [a, aMuted, b, bMuted];
  await Promise.all(all.map((socket) => socket.ends));
  const [aTold, aMutedTold, bTold, bMutedTold] = all.map((socket) => socket.told.sort());
  all.forEach((socket) => socket.close());
  process.stdout.write(JSON.stringify({ a: aTold, aMuted: aMutedTold, b: bTold, bMuted: bMutedTold }) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
