// The chat page: talks GOSF messages ({text, body} in, {success, text, body} out)
// over the stock socket.io client that the app serves at /socket.io-client.js.
//
// The server forgets everything when it restarts, so the page remembers which
// room it is in and joins it again on every reconnection: the user stays in
// the room, and the log says what happened.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);

  // socket.io retries on its own after a lost connection, with a growing delay
  // (capped here so a restarted server is found again within a few seconds).
  const socket = io({
    transports: ["polling", "websocket"],
    reconnectionDelay: 500,
    reconnectionDelayMax: 4000,
  });

  // `joined` is what the user asked for: {name, room} while they are in a room,
  // null otherwise. It survives a lost connection; the server's state does not.
  // `connections` counts them, so a rejoin can tell it was overtaken by the next.
  const state = { joined: null, members: new Set(), rejoining: false, connections: 0 };

  // What each failure code in a reply means to a person. The codes are the
  // chat's (examples/chat/app.py), gosf's own (NOT_FOUND, BAD_REQUEST,
  // INTERNAL_ERROR) and this page's (TIMEOUT, OFFLINE); `body` is the reply's.
  const ERRORS = {
    NAME_REQUIRED: () => "enter a name first.",
    NAME_INVALID: () => "a name is 1 to 32 letters, digits, _ . or -.",
    ROOM_REQUIRED: () => "enter a room first.",
    ROOM_INVALID: () => "a room name is 1 to 32 letters, digits, _ . or -.",
    TO_REQUIRED: () => "say who the whisper is for.",
    TO_INVALID: () => "that is not a valid name.",
    TEXT_REQUIRED: () => "the message is empty.",
    TEXT_TOO_LONG: (body) => `a message is at most ${body.max} characters.`,
    NOT_JOINED: () => "you are not in a room any more; join one again.",
    USER_NOT_FOUND: (body) => `nobody called ${body.to} is here right now.`,
    NOT_FOUND: () => "the server does not know this request (is it a different version?).",
    BAD_REQUEST: () => "the server could not read the request.",
    INTERNAL_ERROR: () => "the server ran into a problem; try again.",
    TIMEOUT: () => "the server did not answer in time; try again.",
    OFFLINE: () => "not connected to the server; wait for it to come back.",
  };

  function explain(reply) {
    const describe = ERRORS[reply.text];
    return describe ? describe(reply.body || {}) : `something went wrong (${reply.text}).`;
  }

  // -- the log: textContent only, so nothing a user types becomes markup --------------

  function log(kind, text, who) {
    const item = document.createElement("li");
    item.dataset.kind = kind;
    if (who) {
      const label = document.createElement("span");
      label.className = "who";
      label.textContent = who;
      item.append(label, " ");
    }
    const body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.append(body);
    $("log").append(item);
    $("log").scrollTop = $("log").scrollHeight;
    return item;
  }

  function logError(action, reply) {
    log("error", `${action}: ${explain(reply)}`).dataset.code = reply.text;
  }

  // -- what the page shows --------------------------------------------------------------

  const STATES = {
    connecting: "Connecting…",
    connected: "Connected",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  };

  function setStatus(value, detail) {
    $("status").dataset.state = value;
    $("status-text").textContent = STATES[value];
    $("status").title = detail || "";
  }

  function render() {
    const joined = state.joined;
    $("join-form").hidden = joined !== null;
    $("chat").hidden = joined === null;
    $("compose").hidden = joined === null;
    // Nothing can be sent until the connection is back and the room rejoined,
    // but the user can go on typing meanwhile.
    const ready = socket.connected && !state.rejoining;
    for (const id of ["say", "whisper", "leave"]) $(id).disabled = !ready;
    $("join").disabled = !socket.connected;
    if (joined === null) return;
    $("me").textContent = joined.name;
    $("room-name").textContent = joined.room;
    const names = [...state.members].sort();
    $("members").replaceChildren(
      ...names.map((name) => {
        const chip = document.createElement("li");
        chip.textContent = name;
        if (name === joined.name) chip.className = "me-chip";
        return chip;
      }),
    );
    $("member-names").replaceChildren(
      ...names.map((name) => Object.assign(document.createElement("option"), { value: name })),
    );
  }

  // -- requests ----------------------------------------------------------------------

  // A GOSF request: the reply is the ack (it also arrives as an event named
  // after the endpoint, which this page does not listen to).
  async function request(endpoint, body) {
    if (!socket.connected) return { success: false, text: "OFFLINE" };
    try {
      return await socket.timeout(5000).emitWithAck(endpoint, { body });
    } catch (error) {
      // socket.io fails a pending request at once when the connection drops
      return { success: false, text: socket.connected ? "TIMEOUT" : "OFFLINE" };
    }
  }

  async function join(name, room) {
    const reply = await request("chat.join", { name, room });
    if (reply.success) {
      state.joined = { name: reply.body.name, room: reply.body.room };
      state.members = new Set(reply.body.members);
    }
    return reply;
  }

  // -- the connection ----------------------------------------------------------------

  socket.on("connect", async () => {
    const connection = ++state.connections;
    setStatus("connected", `transport: ${socket.io.engine.transport.name}`);
    if (state.joined === null) return render();
    // Back after a lost connection: the server no longer has us in the room.
    const { name, room } = state.joined;
    state.rejoining = true;
    render();
    const reply = await join(name, room);
    // Lost again meanwhile: the next connection rejoins, this one has nothing to say.
    if (connection !== state.connections || !socket.connected) return;
    state.rejoining = false;
    if (reply.success) {
      log("system", `Reconnected: back in ${room} as ${name}.`);
    } else {
      state.joined = null;
      logError(`Could not rejoin ${room}`, reply);
    }
    render();
  });

  socket.on("disconnect", (reason) => {
    setStatus("reconnecting", reason);
    if (state.joined !== null) log("system", "Connection lost: reconnecting…");
    // socket.io retries by itself except when the server ended the session on
    // purpose; this chat's server only does that when it shuts down, so retry then too.
    if (reason === "io server disconnect") socket.connect();
    render();
  });

  socket.on("connect_error", (error) => {
    // socket.active: socket.io keeps retrying; otherwise the server refused us.
    setStatus(socket.active ? "reconnecting" : "offline", error.message);
    render();
  });

  // -- pushes from the server (none share a name with an endpoint) ---------------------

  socket.on("chat.message", ({ body }) => log("message", body.text, body.from));
  socket.on("chat.whispered", ({ body }) => log("whisper", body.text, `${body.from} whispers`));
  socket.on("chat.joined", ({ body }) => {
    state.members.add(body.name);
    render();
    log("joined", `${body.name} joined`);
  });
  socket.on("chat.left", ({ body }) => {
    state.members.delete(body.name);
    render();
    const why = { left: "left", disconnected: "went offline", rejoined: "moved to another room" };
    log("left", `${body.name} ${why[body.reason] || "left"}`);
  });

  // -- the user's actions ------------------------------------------------------------

  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await join($("name").value, $("room").value);
    if (!reply.success) return logError("Cannot join", reply);
    render();
    log("system", `You joined ${state.joined.room}.`);
    $("text").focus();
  });

  $("say-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await request("chat.say", { text: $("text").value });
    if (!reply.success) return logError("Not sent", reply);
    $("text").value = "";
    log("self", reply.body.text);
  });

  $("whisper-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await request("chat.whisper", {
      to: $("whisper-to").value,
      text: $("whisper-text").value,
    });
    if (!reply.success) return logError("Whisper not sent", reply);
    $("whisper-text").value = "";
    log("self", reply.body.text, `whisper to ${reply.body.to}`);
  });

  $("leave").addEventListener("click", async () => {
    const room = state.joined.room;
    const reply = await request("chat.leave", {});
    // NOT_JOINED: the server had already forgotten us, which is what leaving means.
    if (!reply.success && reply.text !== "NOT_JOINED") return logError("Cannot leave", reply);
    state.joined = null;
    state.members.clear();
    render();
    log("system", `You left ${room}.`);
  });

  render();
})();
