// Drives a stock npm socket.io-client against a gosf server and prints what it saw.
//
//   node scenarios.cjs <v4|v2> <url> <transports, comma separated>
//
// Prints one JSON object: scenario name -> what the client observed. The
// assertions live in tests/interop/test_npm_clients.py; this script only
// reports, and exits non-zero if a scenario throws or the whole run exceeds
// its time limit.
"use strict";

const [version, url, transportList] = process.argv.slice(2);
const transports = transportList.split(",");
const LIMIT_MS = 20000;

const v4 = version === "v4";
const io = v4 ? require("socket.io-client").io : require("socket.io-client-v2");

setTimeout(() => {
  console.error("scenarios timed out");
  process.exit(3);
}, LIMIT_MS).unref();

function open(nsp = "", opts = {}) {
  const base = { transports, forceNew: true, reconnection: false, timeout: 5000 };
  return io(url + nsp, Object.assign(base, opts));
}

function connected(socket) {
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", (err) => reject(err));
    socket.once("error", (err) => reject(err));
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

function once(socket, event) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} event`)), 5000);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

const b64 = (buf) => Buffer.from(buf).toString("base64");

async function refused() {
  const socket = v4 ? open("", { auth: { token: "bad" } }) : open("", { query: { token: "bad" } });
  try {
    await connected(socket);
    return { connected: true };
  } catch (err) {
    // v4: connect_error carries an Error with message and data; v2: an "error" event with the data.
    return v4 ? { message: err.message, data: err.data } : { data: err };
  } finally {
    socket.close();
  }
}

async function main() {
  const out = {};
  const socket = await connected(open());

  out.echo = await ack(socket, "echo", { text: "Hello world. é ✓ 🎉", n: [1, 2.5, null, true] });
  out.echoMany = await ack(socket, "echo", 1, "two", [3]);

  const event = once(socket, "echo-event");
  socket.emit("echo-event", { a: 1 });
  out.event = await event;

  const blob = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  const [binary] = await ack(socket, "echo", { blob, nested: [Buffer.from("x")] });
  out.binary = { blob: b64(binary.blob), nested: b64(binary.nested[0]), expected: b64(blob) };

  socket.on("question", (a, b, reply) => reply(a * b));
  out.serverAck = await ack(socket, "call-me", "question", 6, 7);

  out.whoami = (await ack(socket, "whoami"))[0];
  if (transports.length > 1) {
    const engine = socket.io.engine;
    if (engine.transport.name !== "websocket") await once(engine, "upgrade");
    out.upgradedWhoami = (await ack(socket, "whoami"))[0];
  }

  const custom = await connected(open("/custom"));
  out.custom = await ack(custom, "echo", "hi");
  custom.close();

  out.refused = await refused();

  const gone = once(socket, "disconnect");
  socket.emit("disconnect-me");
  out.serverDisconnect = await gone;
  socket.close();

  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
