// The chat page: talks GOSF messages ({text, body} in, {success, text, body} out)
// over the stock socket.io client served by the app at /socket.io-client.js.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const socket = io({ transports: ["polling", "websocket"] });
  const state = { name: null, room: null, members: new Set() };

  // One line in the log; textContent only, so nothing a user types becomes markup.
  function log(kind, text) {
    const item = document.createElement("li");
    item.dataset.kind = kind;
    item.textContent = text;
    $("log").append(item);
    $("log").scrollTop = $("log").scrollHeight;
  }

  function setStatus(value, text) {
    $("status").dataset.state = value;
    $("status").textContent = text;
  }

  function showMembers() {
    $("members").textContent = [...state.members].sort().join(", ");
  }

  // A GOSF request: the reply is the ack (it also arrives as an event named
  // after the endpoint, which this page does not listen to).
  async function request(endpoint, body) {
    try {
      return await socket.timeout(5000).emitWithAck(endpoint, { body });
    } catch (error) {
      return { success: false, text: "TIMEOUT" };
    }
  }

  socket.on("connect", () => {
    const engine = socket.io.engine;
    const show = () => setStatus("connected", `connected (${engine.transport.name})`);
    show();
    engine.once("upgrade", show); // polling → websocket
  });
  socket.on("disconnect", (reason) => {
    setStatus("disconnected", `disconnected: ${reason}`);
    $("chat").hidden = true;
    state.name = state.room = null;
  });
  socket.on("connect_error", (error) => setStatus("error", `cannot connect: ${error.message}`));

  // Pushes from the server (none share a name with an endpoint).
  socket.on("chat.message", ({ body }) => log("message", `${body.from}: ${body.text}`));
  socket.on("chat.whispered", ({ body }) => log("whisper", `${body.from} whispers: ${body.text}`));
  socket.on("chat.joined", ({ body }) => {
    state.members.add(body.name);
    showMembers();
    log("joined", `${body.name} joined`);
  });
  socket.on("chat.left", ({ body }) => {
    state.members.delete(body.name);
    showMembers();
    log("left", `${body.name} left (${body.reason})`);
  });

  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await request("chat.join", { name: $("name").value, room: $("room").value });
    if (!reply.success) return log("error", `cannot join: ${reply.text}`);
    state.name = reply.body.name;
    state.room = reply.body.room;
    state.members = new Set(reply.body.members);
    $("me").textContent = state.name;
    $("room-name").textContent = state.room;
    showMembers();
    $("chat").hidden = false;
    log("system", `you joined ${state.room}`);
    $("text").focus();
  });

  $("say-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await request("chat.say", { text: $("text").value });
    if (!reply.success) return log("error", `not sent: ${reply.text}`);
    $("text").value = "";
    log("self", `${reply.body.from} (you): ${reply.body.text}`);
  });

  $("whisper-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await request("chat.whisper", { to: $("whisper-to").value, text: $("whisper-text").value });
    if (!reply.success) return log("error", `whisper not sent: ${reply.text}`);
    $("whisper-text").value = "";
    log("self", `you whisper to ${reply.body.to}: ${reply.body.text}`);
  });

  $("leave").addEventListener("click", async () => {
    const reply = await request("chat.leave", {});
    if (!reply.success) return log("error", `cannot leave: ${reply.text}`);
    $("chat").hidden = true;
    log("system", `you left ${state.room}`);
    state.name = state.room = null;
  });
})();
