// A stock npm socket.io-client v4 with socket.io-msgpack-parser against a gosf
// server whose parser is msgpack; prints what it saw.
//
//   node msgpack_client.cjs <url> <transports, comma separated>
//
// Prints one JSON object (binary data as base64); the assertions live in
// tests/interop/test_msgpack.py. Exits non-zero if a step throws or the run
// exceeds its time limit.
"use strict";

const { io } = require("socket.io-client");
const parser = require("socket.io-msgpack-parser");

const [url, transportList] = process.argv.slice(2);
const transports = transportList.split(",");
const LIMIT_MS = 20000;

setTimeout(() => {
  console.error("msgpack client timed out");
  process.exit(3);
}, LIMIT_MS).unref();

function open(nsp, opts = {}) {
  const base = { transports, parser, forceNew: true, reconnection: false, timeout: 5000 };
  return io(url + nsp, Object.assign(base, opts));
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
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

const b64 = (buf) => Buffer.from(buf).toString("base64");

async function main() {
  const out = {};
  const socket = await connected(open("", { auth: { token: "t" } }));

  const blob = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const reply = await ack(socket, "echo", { text: "é ✓", blob }, [1, 2.5]);
  out.echo = { text: reply[0].text, blob: b64(reply[0].blob), list: reply[1] };

  // The server calls back: an event with an ack id, answered with binary data.
  socket.on("question", (a, b, ack) => ack(Buffer.from([a * b])));
  out.serverAck = await socket.timeout(5000).emitWithAck("call-me", 6, 7);

  out.whoami = await socket.timeout(5000).emitWithAck("whoami");

  const custom = await connected(open("/custom"));
  out.custom = await custom.timeout(5000).emitWithAck("echo", "hi");
  custom.close();

  try {
    await connected(open("/nowhere"));
    out.refused = null;
  } catch (err) {
    out.refused = err.message;
  }

  const gone = new Promise((resolve) => socket.once("disconnect", resolve));
  socket.emit("disconnect-me");
  out.serverDisconnect = await gone;

  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
