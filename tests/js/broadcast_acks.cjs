// Stock npm socket.io-client v4 sockets answering a gosf broadcast with acks.
//
//   node broadcast_acks.cjs <url>
//
// Five sockets join the room "voters": three answer the "poll" event at once
// with their names, "late" answers only once the collection is over (when
// the server emits "collected"), "quitter" disconnects instead of answering.
// A sixth socket, outside the room, asks the server to "collect" and gets
// the result as its ack. Prints one JSON object: each socket's sid, the
// result, and whether the late answer went out; the assertions live in
// tests/interop/test_broadcast_acks_npm.py. Exits non-zero if anything
// throws or the run exceeds its time limit.
"use strict";

const { io } = require("socket.io-client");
const [url] = process.argv.slice(2);

setTimeout(() => {
  console.error("broadcast acks timed out");
  process.exit(3);
}, 30000).unref();

function connect() {
  const socket = io(url, { transports: ["websocket"], forceNew: true, reconnection: false });
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(socket));
    socket.once("connect_error", reject);
  });
}

function call(socket, event, ...args) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${event}`)), 10000);
    socket.emit(event, ...args, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
  });
}

async function main() {
  const names = ["a", "b", "c", "late", "quitter"];
  const sockets = {};
  const sids = {};
  let lateAnswered = null;
  for (const name of names) {
    const socket = await connect();
    sockets[name] = socket;
    if (name === "late") {
      let answer = null;
      socket.on("poll", (question, cb) => (answer = cb));
      lateAnswered = new Promise((resolve) =>
        socket.on("collected", () => {
          answer(`too late: ${name}`);
          resolve(true);
        }),
      );
    } else if (name === "quitter") {
      socket.on("poll", () => socket.disconnect());
    } else {
      socket.on("poll", (question, cb) => cb(`${name} says yes to ${question}`));
    }
    sids[name] = await call(socket, "vote-join");
  }
  const driver = await connect();
  const result = await call(driver, "collect", 2.0);
  const late = await lateAnswered;
  // The server still serves: a late answer changed nothing.
  const after = await call(driver, "collect", 2.0);
  for (const socket of [...Object.values(sockets), driver]) socket.close();
  process.stdout.write(JSON.stringify({ sids, result, late, after }) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
