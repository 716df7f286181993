// Node's bare websocket echo (the `ws` library): the ceiling under Node's
// socket.io, as benchmarks/servers.py's `bare` app is under the Python servers.
// Every text or binary message comes back as it came, on any path.
//
// One process, on 127.0.0.1, no compression. Usage: node ws_echo.cjs --port N
"use strict";

const { WebSocketServer } = require("ws");

const at = process.argv.indexOf("--port");
const port = at >= 0 ? Number(process.argv[at + 1]) : NaN;
if (!Number.isInteger(port) || port <= 0) {
  console.error("usage: node ws_echo.cjs --port N");
  process.exit(2);
}

// As the Python servers' backlog: hundreds of clients connect at once.
const server = new WebSocketServer({ host: "127.0.0.1", port, backlog: 2048, perMessageDeflate: false });
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
