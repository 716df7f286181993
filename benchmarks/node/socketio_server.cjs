// Node's socket.io 4.8, serving what gosf serves in the benchmarks, so that the
// two can be measured side by side by the same load generators:
//
// * `echo` answers by ack with its argument (benchmarks/servers.py's `gosf` app,
//   driven by benchmarks.loadgen);
// * `blast` with an integer n broadcasts `news` (n, {"text":"hello"}) to every
//   client of the `/` namespace but the caller, then acks n; `whoami` acks this
//   process's id; `census` acks {pid, sockets} (benchmarks/broadcast_servers.py's
//   protocol, driven by benchmarks.broadcast_loadgen).
//
// One process, on 127.0.0.1, the default path /socket.io/, no compression (as
// gosf). Usage: node socketio_server.cjs --port N
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function port() {
  const at = process.argv.indexOf("--port");
  const value = at >= 0 ? Number(process.argv[at + 1]) : NaN;
  if (!Number.isInteger(value) || value <= 0) {
    console.error("usage: node socketio_server.cjs --port N");
    process.exit(2);
  }
  return value;
}

const PAYLOAD = { text: "hello" };
const httpServer = http.createServer();
const io = new Server(httpServer, { serveClient: false, perMessageDeflate: false });
const root = io.of("/");

io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => {
    if (typeof ack === "function") ack(data);
  });
  socket.on("blast", (n, ack) => {
    socket.broadcast.emit("news", n, PAYLOAD);
    if (typeof ack === "function") ack(n);
  });
  socket.on("whoami", (...args) => {
    const ack = args[args.length - 1];
    if (typeof ack === "function") ack(process.pid);
  });
  socket.on("census", (...args) => {
    const ack = args[args.length - 1];
    if (typeof ack === "function") ack({ pid: process.pid, sockets: root.sockets.size });
  });
});

// As the Python servers' backlog: hundreds of clients connect at once.
httpServer.listen(port(), "127.0.0.1", 2048);

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
