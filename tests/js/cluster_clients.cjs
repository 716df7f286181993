// Several stock npm socket.io-client sockets on a gosf cluster behind a load balancer.
//
//   node cluster_clients.cjs <v4|v2> <url> <transports, comma separated> <room>
//
// Each client opens a new TCP connection per HTTP request (agent: false), so a
// round-robin balancer sends its polling requests to every worker in turn.
// Every client joins <room>, calls "whoami" ten times, then one client has
// the room told a message ("tell-room"), which every client must receive.
// Prints one JSON object with what each client saw; the assertions live in
// tests/interop/test_cluster.py. Exits non-zero if anything throws or the run
// exceeds its time limit.
"use strict";

const [version, url, transportList, room] = process.argv.slice(2);
const transports = transportList.split(",");
const v4 = version === "v4";
const io = v4 ? require("socket.io-client").io : require("socket.io-client-v2");
const CLIENTS = 4;

setTimeout(() => {
  console.error("cluster clients timed out");
  process.exit(3);
}, 40000).unref();

function connect() {
  const socket = io(url, {
    transports,
    forceNew: true,
    reconnection: false,
    timeout: 5000,
    agent: false,
  });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
    socket.once("error", reject);
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
  const sockets = [];
  for (let i = 0; i < CLIENTS; i++) sockets.push(await connect());
  const seen = sockets.map(() => ({ pids: [], told: [], disconnects: 0 }));
  sockets.forEach((socket, i) => {
    socket.on("told", (message) => seen[i].told.push(message.text));
    socket.on("disconnect", () => (seen[i].disconnects += 1));
  });
  const told = sockets.map(
    (socket) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no told event")), 10000);
        socket.on("told", () => {
          clearTimeout(timer);
          resolve();
        });
      }),
  );
  await Promise.all(sockets.map((socket) => call(socket, "join", { text: room })));
  for (let n = 0; n < 10; n++) {
    const replies = await Promise.all(sockets.map((socket) => call(socket, "whoami", { text: "" })));
    replies.forEach((reply, i) => seen[i].pids.push(reply.text));
  }
  await call(sockets[0], "tell-room", { text: "hello room", body: { room } });
  await Promise.all(told);
  const out = seen.map((s, i) => ({
    pids: [...new Set(s.pids)],
    calls: s.pids.length,
    told: s.told,
    disconnects: s.disconnects,
    transport: sockets[i].io.engine.transport.name,
  }));
  sockets.forEach((socket) => socket.close());
  process.stdout.write(JSON.stringify({ clients: out }) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
