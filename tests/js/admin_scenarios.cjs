// The npm socket.io-client v4 as the Admin UI uses it, against gosf's /admin
// (tests/apps/admin_app.py): the login, the session, the events and the actions.
//
//   node admin_scenarios.cjs <url> <transports, comma separated>
//
// Prints one JSON object of what the clients observed; tests/interop/test_admin_npm.py
// holds the assertions. Exits non-zero if a step throws or the run takes too long.
"use strict";

const { io } = require("socket.io-client");

const [url, transportList] = process.argv.slice(2);
const transports = transportList.split(",");

setTimeout(() => {
  console.error("admin scenario timed out");
  process.exit(3);
}, 20000).unref();

function within(promise, what) {
  return Promise.race([
    promise,
    new Promise((_, reject) => setTimeout(() => reject(new Error(`no ${what}`)), 5000)),
  ]);
}

// Connect to `path`; resolve with the socket, or with the connect_error's message.
function connect(path, auth) {
  const socket = io(url + path, { transports, forceNew: true, reconnection: false, auth });
  socket.log = [];
  socket.onAny((event, ...args) => socket.log.push([event, ...args]));
  return within(
    new Promise((resolve) => {
      socket.once("connect", () => resolve({ socket }));
      socket.once("connect_error", (err) => resolve({ error: err.message }));
    }),
    `connect to ${path}`,
  );
}

// The first event `name` on `socket` (already received or still to come) for which `test` holds.
function next(socket, name, test = () => true) {
  const found = socket.log.find(([event, ...args]) => event === name && test(...args));
  if (found) return Promise.resolve(found.slice(1));
  return within(
    new Promise((resolve) => {
      const listener = (event, ...args) => {
        if (event === name && test(...args)) {
          socket.offAny(listener);
          resolve(args);
        }
      };
      socket.onAny(listener);
    }),
    `${name} event`,
  );
}

const call = (socket, event, ...args) =>
  within(new Promise((resolve) => socket.emit(event, ...args, resolve)), `${event} ack`);

async function main() {
  const out = {};
  out.wrongPassword = (await connect("/admin", { username: "admin", password: "nope" })).error;
  out.wrongUser = (await connect("/admin", { username: "root", password: "secret" })).error;
  out.noAuth = (await connect("/admin", {})).error;

  const { socket: admin } = await connect("/admin", { username: "admin", password: "secret" });
  const [sessionId] = await next(admin, "session");
  const [config] = await next(admin, "config");
  const [allSockets] = await next(admin, "all_sockets");
  const [stats] = await next(admin, "server_stats");
  out.sessionId = sessionId;
  out.config = config;
  const firsts = ["session", "config", "all_sockets"];
  out.firstEvents = admin.log.map(([event]) => event).filter((event) => firsts.includes(event));
  out.allSockets = allSockets;
  out.stats = stats;

  const { socket: again } = await connect("/admin", { sessionId });
  await next(again, "config");
  out.reused = again.log.map(([event]) => event).filter((e) => e === "session").length;
  again.disconnect();
  out.staleSession = (await connect("/admin", { sessionId: "0123abcd" })).error;

  const { socket: client } = await connect("/", undefined);
  const [connected] = await next(admin, "socket_connected", (s) => s.id === client.id);
  out.connected = connected;
  out.clientRooms = await call(client, "join", "red");
  out.roomJoined = await next(admin, "room_joined", (nsp, room, id) => room === "red");
  out.eventReceived = await next(admin, "event_received", (nsp, id) => id === client.id);
  await call(client, "ping", 7);
  out.eventSent = await next(admin, "event_sent", (nsp, id) => id === client.id);

  // The actions, as the UI sends them (a socket's id as the room filter).
  const note = new Promise((resolve) => client.once("note", (...args) => resolve(args)));
  admin.emit("emit", "/", "red", "note", "hi", 2);
  out.note = await within(note, "note");
  admin.emit("join", "/", "blue", client.id);
  out.joinedBlue = await next(admin, "room_joined", (nsp, room, id) => room === "blue");
  admin.emit("leave", "/", "blue", client.id);
  out.leftBlue = await next(admin, "room_left", (nsp, room, id) => room === "blue");
  // A disconnected client forgets its id.
  const clientId = client.id;
  const gone = new Promise((resolve) => client.once("disconnect", resolve));
  admin.emit("_disconnect", "/", false, clientId);
  out.clientReason = await within(gone, "client disconnect");
  out.disconnected = await next(admin, "socket_disconnected", (nsp, id) => id === clientId);
  const [later] = await next(admin, "server_stats", (s) =>
    s.aggregatedEvents.some((e) => e.type === "rawDisconnection"),
  );
  out.laterStats = later;
  admin.disconnect();
  console.log(JSON.stringify(out));
  process.exit(0);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
