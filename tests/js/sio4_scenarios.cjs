// The npm socket.io-client v4 against tests/apps/sio4.py: except-rooms, volatile
// emits, dynamic namespaces, and a GOSF app in "/api".
//
//   node sio4_scenarios.cjs <url> <except|volatile|dynamic|app> <transports, comma separated>
//
// Prints one JSON object of what the clients observed; tests/interop/test_sio4_npm.py
// holds the assertions. Exits non-zero if a scenario throws or the run takes too long.
"use strict";

const { io } = require("socket.io-client");

const [url, scenario, transportList] = process.argv.slice(2);
const transports = transportList.split(",");

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

// A connected client of namespace `path` (a new connection each), recording
// the events named in `events`.
async function client(path, events = []) {
  const socket = io(url + path, { transports, forceNew: true, reconnection: false });
  socket.seen = {};
  for (const name of events) {
    socket.seen[name] = [];
    socket.on(name, (data) => socket.seen[name].push(data));
  }
  await within(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    `connect to ${path}`,
  );
  return socket;
}

const call = (socket, event, ...args) =>
  within(new Promise((resolve) => socket.emit(event, ...args, resolve)), `${event} ack`);

// The events sent to a socket before an ack arrive before it: one round trip
// after the broadcasts under test, and everything they sent it is there.
const settle = (socket) => call(socket, "join", "settle");

const scenarios = {
  async except() {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => client("/", ["note"])));
    await call(a, "join", "red");
    await call(b, "join", "red");
    await call(b, "join", "muted");
    await call(c, "join", "muted");
    const out = { ids: { a: a.id, b: b.id, c: c.id } };
    out.redButMuted = await call(c, "except", "red", ["muted"]);
    out.allButMutedAndA = await call(c, "except", null, ["muted", a.id]);
    out.allButRed = await call(a, "except", null, ["red"]);
    for (const s of [a, b, c]) await settle(s);
    out.notes = { a: a.seen.note, b: b.seen.note, c: c.seen.note };
    for (const s of [a, b, c]) s.close();
    return out;
  },

  async volatile() {
    const a = await client("/", ["note"]);
    const out = { sent: await call(a, "burst") };
    await settle(a);
    out.notes = a.seen.note;
    a.close();
    return out;
  },

  async dynamic() {
    const one = await client("/tenant-1", ["heard"]);
    const two = await client("/tenant-2", ["heard"]);
    const out = { where: [await call(one, "where"), await call(two, "where")] };
    out.shout = await call(one, "shout", "hi");
    await call(one, "where"); // round trips, as settle()
    await call(two, "where");
    out.heard = [one.seen.heard, two.seen.heard];
    out.refused = await client("/other").then(
      () => null,
      (err) => err.message,
    );
    one.close();
    two.close();
    return out;
  },

  async app() {
    const api = await client("/api", ["heard"]);
    const out = { echo: await call(api, "echo", { text: "hi" }) };
    api.emit("shout", { text: "to all" });
    out.heard = await within(
      new Promise((resolve) => api.once("heard", resolve)),
      "heard",
    );
    api.close();
    return out;
  },
};

scenarios[scenario]()
  .then((out) => {
    process.stdout.write(JSON.stringify(out) + "\n");
    process.exit(0);
  })
  .catch((err) => {
    console.error(err && err.stack ? err.stack : err);
    process.exit(2);
  });
