// The GOSF sample app as its own page drives it (socket.io JS 2.2-style client,
// or v4): requests with and without acks, and the event copy of each response.
//
//   node gosf_scenarios.cjs <v4|v2> <url> <transports, comma separated>
//
// Prints one JSON object of what the client observed; tests/interop/test_sample_app.py
// holds the assertions. Exits non-zero if a scenario throws or the run takes too long.
"use strict";

const [version, url, transportList] = process.argv.slice(2);
const transports = transportList.split(",");
const v4 = version === "v4";
const io = v4 ? require("socket.io-client").io : require("socket.io-client-v2");

setTimeout(() => {
  console.error("scenarios timed out");
  process.exit(3);
}, 20000).unref();

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what}`)), 5000)),
  ]);
}

async function main() {
  const socket = io(url, { transports, forceNew: true, reconnection: false });
  await within(new Promise((resolve) => socket.once("connect", resolve)), "connect");
  const events = { "util.echo": [], "auth.register": [] };
  for (const name of Object.keys(events)) socket.on(name, (data) => events[name].push(data));

  const ack = (endpoint, payload) =>
    within(new Promise((resolve) => socket.emit(endpoint, payload, resolve)), `${endpoint} ack`);
  const out = {};
  out.register = await ack("auth.register", { id: 1, data: { version: 1 } });
  out.echo = await ack("util.echo", {
    id: 3,
    guid: "1111-1111-1111-1111-1111",
    text: "hi",
    body: { description: "this is in scaffolding.html" },
  });
  socket.emit("util.echo", { id: 4, text: "no ack" }); // the Echo button: no callback
  out.notFound = await ack("no.such.endpoint", { id: 5 });
  out.badRequest = await ack("util.echo", "not a message");
  await within(
    (async () => {
      while (events["util.echo"].length < 3) await new Promise((r) => setTimeout(r, 10));
    })(),
    "util.echo events",
  );
  out.events = events;
  socket.close();
  process.stdout.write(JSON.stringify(out) + "\n");
  process.exit(0);
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(2);
});
