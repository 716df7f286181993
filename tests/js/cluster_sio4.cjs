// Stock npm socket.io-client v4 sockets on two gosf workers sharing Redis
// (tests/apps/cluster_sio4_app.py): volatile broadcasts, dynamic namespaces,
// binary data in broadcasts and in broadcasts with acks, and a GOSF app in
// "/api", across processes.
//
//   node cluster_sio4.cjs <volatile|dynamic|binary|app> <url of worker A> <url of worker B> \
//     <tag> <json|msgpack>
//
// <tag> makes the rooms' names unique to the run; the last argument names the
// workers' parser, which every socket uses (msgpack: socket.io-msgpack-parser).
// Prints one JSON object of what the sockets saw (binary data as base64);
// tests/interop/test_cluster_sio4.py holds the assertions. Exits non-zero if a
// scenario throws or the run takes too long.
"use strict";

const { io } = require("socket.io-client");
const msgpackParser = require("socket.io-msgpack-parser");

const [scenario, first, second, tag, parserName] = process.argv.slice(2);
const parser = parserName === "msgpack" ? { parser: msgpackParser } : {};

setTimeout(() => {
  console.error("cluster sio4 scenario timed out");
  process.exit(3);
}, 30000).unref();

function within(promise, what, ms = 8000) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what}`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

// A connected socket of `url` + `path`, recording the events named in `events`;
// `until(name, test)` resolves once an event `name` has satisfied `test`.
async function client(url, path, events = [], opts = {}) {
  const base = { transports: ["websocket"], forceNew: true, reconnection: false };
  const socket = io(url + path, Object.assign(base, parser, opts));
  socket.seen = {};
  const waiters = [];
  socket.until = (name, test) =>
    within(
      new Promise((resolve) => {
        const check = () => socket.seen[name].some((args) => test(...args)) && (resolve(), true);
        if (!check()) waiters.push(check);
      }),
      `${name} on ${path}`,
    );
  for (const name of events) {
    socket.seen[name] = [];
    socket.on(name, (...args) => {
      socket.seen[name].push(args);
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]()) waiters.splice(i, 1);
    });
  }
  await within(
    new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("connect_error", reject);
    }),
    `connect to ${url}${path}`,
  );
  return socket;
}

const call = (socket, event, ...args) =>
  within(new Promise((resolve) => socket.emit(event, ...args, resolve)), `${event} ack`);

const firsts = (socket, name) => socket.seen[name].map((args) => args[0]).sort();
const b64 = (buf) => Buffer.from(buf).toString("base64");

const scenarios = {
  // A volatile tick to a room from worker A: its members on A and B that can
  // take it get it; B's member over long-polling with no GET pending (its
  // polling paused, as engine.io-client does before an upgrade) cannot, and B
  // counts the drop.
  async volatile() {
    const room = `volatile-${tag}`;
    const a = await client(first, "/", ["tick", "end"]);
    const b = await client(second, "/", ["tick", "end"]);
    const paused = await client(second, "/", ["tick", "end"], {
      transports: ["polling"],
      upgrade: false,
    });
    for (const socket of [a, b]) await call(socket, "join", room);
    // Pause right behind the join: the pause ends once the join's ack has come
    // back on the GET then pending, and no GET follows it.
    const joined = call(paused, "join", room);
    const transport = paused.io.engine.transport;
    const isPaused = within(new Promise((resolve) => transport.pause(resolve)), "pause");
    await joined;
    await isPaused;
    const out = { pausedState: transport.readyState };
    const before = { a: await call(a, "dropped"), b: await call(b, "dropped") };
    out.queuedOnA = await call(a, "volatile", room, "tick from A");
    // Not volatile, and behind the tick from the same worker: whoever has the
    // end has had whatever of the tick it was going to get.
    await call(a, "end", room, "end from A");
    await a.until("end", () => true);
    await b.until("end", () => true);
    out.dropped = {
      a: (await call(a, "dropped")) - before.a,
      b: (await call(b, "dropped")) - before.b,
    };
    out.ticks = { a: firsts(a, "tick"), b: firsts(b, "tick"), paused: firsts(paused, "tick") };
    for (const socket of [a, b, paused]) socket.close();
    return out;
  },

  // Clients of /tenant-7 on both workers, of /tenant-8 on B only.
  async dynamic() {
    const a7 = await client(first, "/tenant-7", ["heard"]);
    const b7 = await client(second, "/tenant-7", ["heard"]);
    const b8 = await client(second, "/tenant-8", ["heard"]);
    const out = { where: [] };
    for (const socket of [a7, b7, b8]) out.where.push(await call(socket, "where"));
    out.toSeven = await call(a7, "emit-to", ["/tenant-7"], "to seven from A");
    out.toEight = await call(a7, "emit-to", ["/tenant-8"], "to eight from A");
    out.parentA = await call(a7, "shout", "parent from A");
    out.parentB = await call(b8, "shout", "parent from B");
    // Each worker's last: a client with both ends has all that was sent before them.
    const ends = ["/tenant-7", "/tenant-8"];
    await call(a7, "emit-to", ends, "end A");
    await call(b8, "emit-to", ends, "end B");
    for (const socket of [a7, b7, b8]) {
      await socket.until("heard", (text) => text === "end A");
      await socket.until("heard", (text) => text === "end B");
    }
    out.heard = { a7: firsts(a7, "heard"), b7: firsts(b7, "heard"), b8: firsts(b8, "heard") };
    // A broadcast with acks to a child A does not have: B's socket answers.
    b8.on("poll", (question, ack) => ack(`${question} from b8`));
    out.b8 = b8.id;
    out.asked = await call(a7, "ask", "/tenant-8", "who?", 5);
    for (const socket of [a7, b7, b8]) socket.close();
    return out;
  },

  // A room broadcast with binary data from A, and a broadcast with acks whose
  // question and answers are binary (msgpack: inline; JSON: attachments).
  async binary() {
    const room = `bin-${tag}`;
    const a = await client(first, "/", ["bin"]);
    const b = await client(second, "/", ["bin"]);
    const bOut = await client(second, "/", ["bin"]);
    const sids = { a: await call(a, "join", room), b: await call(b, "join", room) };
    for (const [name, socket] of [["a", a], ["b", b]]) {
      socket.on("poll", (question, ack) => ack(Buffer.concat([question, Buffer.from(name)])));
    }
    const blob = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const out = { sids, toRoom: await call(a, "tell", room, "to the room", blob) };
    await call(a, "tell", null, "end", Buffer.from("end"));
    for (const socket of [a, b, bOut]) await socket.until("bin", (m) => m.text === "end");
    const seen = (socket) => socket.seen.bin.map(([m]) => [m.text, b64(m.blob)]);
    out.bin = { a: seen(a), b: seen(b), bOut: seen(bOut) };
    const result = await call(a, "collect", room, Buffer.from([1, 2]), 5);
    out.answers = Object.fromEntries(
      Object.entries(result.answers).map(([sid, answer]) => [sid, b64(answer)]),
    );
    out.timedOut = result.timed_out;
    for (const socket of [a, b, bOut]) socket.close();
    return out;
  },

  // A GOSF app in "/api": a broadcast from the app on A reaches its clients on B.
  async app() {
    const a = await client(first, "/api", ["heard"]);
    const b = await client(second, "/api", ["heard"]);
    const root = await client(second, "/", ["heard"]);
    a.emit("shout", { text: `to all ${tag}` });
    for (const socket of [a, b]) await socket.until("heard", (m) => m.text === `to all ${tag}`);
    // "/" is another namespace: a round trip there after the broadcast reached
    // B, and it had nothing of it.
    await call(root, "join", `settle-${tag}`);
    const heard = (socket) => socket.seen.heard.slice();
    const out = { heard: { a: heard(a), b: heard(b), root: heard(root) } };
    // The app's cluster helpers, from A, on its client of B.
    // Always a body: msgpack would carry an undefined one as nil, which GOSF refuses.
    const ask = async (socket, endpoint, body = {}) =>
      (await call(socket, endpoint, { text: "", body })).body;
    const room = `api-${tag}`;
    const pulled = `pulled-${tag}`;
    out.sidB = (await call(b, "join", { text: room })).text;
    out.apiRoom = room;
    out.rooms = (await ask(a, "rooms")).rooms;
    out.pulled = (await ask(a, "pull-into", { sid: out.sidB, room: pulled })).found;
    if (out.pulled) {
      await call(a, "tell-room", { text: "to the pulled", body: { room: pulled } });
      await b.until("heard", (m) => m.text === "to the pulled");
    }
    out.pushed = (await ask(a, "push-out", { sid: out.sidB, room: pulled })).found;
    const gone = new Promise((resolve) => b.once("disconnect", resolve));
    out.kicked = (await ask(a, "kick", { sid: out.sidB })).found;
    out.reason = out.kicked ? await within(gone, "disconnect") : null;
    for (const socket of [a, b, root]) socket.close();
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
