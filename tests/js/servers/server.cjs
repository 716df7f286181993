// A stock npm socket.io server for gosf's client interop tests.
//
//   node server.cjs <v4|v2> <port>
//
// v4 is socket.io 4.x (Socket.IO 5 / Engine.IO 4), v2 is socket.io 2.x
// (Socket.IO 4 / Engine.IO 3, the protocol of GOSF in Go). It listens on
// 127.0.0.1:<port> and exits when its stdin closes, so it never outlives the
// test run. The packages come from ./package-lock.json (npm ci in this folder).
"use strict";

const http = require("http");

const [version, port] = process.argv.slice(2);
const v4 = version === "v4";
// Short heartbeats: a client that does not answer pings (v4) or does not send
// them (v2) is dropped within a second, which the heartbeat tests rely on.
const options = { pingInterval: 300, pingTimeout: 400 };
const httpServer = http.createServer();
const io = v4
  ? new (require("socket.io").Server)(httpServer, options)
  : require("socket.io-v2")(httpServer, options);

const disconnects = new Map(); // sid -> reason
const reasonWaiters = new Map(); // sid -> callbacks waiting for its reason

// Answers a socket's disconnect reason once it has one, or null after `seconds`.
function whenDisconnected(sid, seconds, ack) {
  if (disconnects.has(sid)) return ack(disconnects.get(sid));
  const waiters = reasonWaiters.get(sid) ?? [];
  reasonWaiters.set(sid, waiters);
  const tell = (reason) => {
    clearTimeout(timer);
    waiters.splice(waiters.indexOf(tell), 1);
    ack(reason);
  };
  const timer = setTimeout(() => tell(null), seconds * 1000);
  waiters.push(tell);
}

function split(args) {
  const last = args[args.length - 1];
  return typeof last === "function" ? [args.slice(0, -1), last] : [args, () => {}];
}

function on(socket, event, handler) {
  socket.on(event, (...raw) => {
    const [args, ack] = split(raw);
    handler(args, ack);
  });
}

function refuseBadToken(socket, next) {
  const token = v4 ? socket.handshake.auth.token : socket.handshake.query.token;
  if (token !== "bad") return next();
  const err = new Error("not authorized");
  err.data = { reason: "bad token" };
  return next(err);
}

io.use(refuseBadToken);
io.of("/custom").use(refuseBadToken);

io.on("connection", (socket) => {
  on(socket, "echo", (args, ack) => ack(...args));
  on(socket, "echo-event", (args) => socket.emit("echo-event", ...args));
  on(socket, "whoami", (args, ack) =>
    ack({
      sid: socket.id,
      namespace: socket.nsp.name,
      auth: v4 ? socket.handshake.auth : { token: socket.handshake.query.token },
    }),
  );
  on(socket, "call-me", ([event, ...args], ack) => {
    const timer = setTimeout(() => ack("no answer"), 5000);
    socket.emit(event, ...args, (...reply) => {
      clearTimeout(timer);
      ack(...reply);
    });
  });
  on(socket, "sleep", ([seconds], ack) => setTimeout(() => ack("slept"), seconds * 1000));
  // never acks: a call in flight fails when the namespace goes
  on(socket, "disconnect-me", ([delay]) => setTimeout(() => socket.disconnect(), (delay || 0) * 1000));
  on(socket, "disconnect-reason", ([sid], ack) => ack(disconnects.get(sid) ?? null));
  socket.on("disconnect", (reason) => disconnects.set(socket.id, reason));
  on(socket, "wait-disconnect-reason", ([sid, seconds], ack) => whenDisconnected(sid, seconds, ack));
  socket.on("disconnect", (reason) => {
    for (const tell of [...(reasonWaiters.get(socket.id) ?? [])]) tell(reason);
    reasonWaiters.delete(socket.id);
  });
});

io.of("/custom").on("connection", (socket) => {
  on(socket, "echo", (args, ack) => ack("custom", ...args));
});

httpServer.listen(Number(port), "127.0.0.1", () => console.log("ready"));
process.stdin.on("end", () => process.exit(0));
process.stdin.resume();
