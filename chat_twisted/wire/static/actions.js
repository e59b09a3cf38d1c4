// actions.js — the requests behind the slash commands (the `api` commands.js runs a line
// against): what each one sends, in which conversation its answer is shown, and the error text
// when it cannot be done here or now. No DOM.

import { fold } from "./format.js";
import { modeNames } from "./moderation.js";

/** The commands' api on top of `session` (ChatSession): each returns an error text or null. */
export function commandApi(session) {
  const here = () => session.state.active;
  const inRoom = () => {
    const conversation = here();
    return conversation && conversation.kind === "room" ? conversation : null;
  };
  const roomOnly = (run) => {
    const room = inRoom();
    return room ? run(room) : "this works in a room, not in a private conversation";
  };
  // A room's request: in `room` (a conversation) if given, else in the room shown.
  const inThe = (room, run) => (room ? run(room) : roomOnly(run));
  const forRoom = (type, fields, room) => inThe(room, (r) => session.send({ type, room: r.name, ...fields }));
  return {
    say: (text) => {
      const conversation = here();
      if (!conversation) return "join a room first: /join ROOM";
      if (conversation.kind === "private") return session.send({ type: "tell", nick: conversation.name, text, action: false });
      return session.send({ type: "say", room: conversation.name, text });
    },
    act: (text) => {
      const conversation = here();
      if (!conversation) return "join a room first: /join ROOM";
      if (conversation.kind === "private") return session.send({ type: "tell", nick: conversation.name, text, action: true });
      return session.send({ type: "act", room: conversation.name, text });
    },
    msg: (nick, text) => {
      const error = session.send({ type: "tell", nick, text, action: false });
      if (!error) session.openPrivate(nick);
      return error;
    },
    nick: (nick) => session.send({ type: "nick", nick }),
    join: (room) => session.join(room),
    part: (reason) => session.leave(here(), reason),
    topic: (text) => roomOnly((room) => {
      if (text !== null) return session.send({ type: "topic", room: room.name, text });
      return session.ask({ type: "topic", room: room.name }, ["topic_info"], (answer) => {
        session.on_topic_info(answer);
        session.info(room, answer.topic ? `Topic of #${room.name}: ${answer.topic}${answer.nick ? ` (set by ${answer.nick})` : ""}`
          : `#${room.name} has no topic.`);
      });
    }),
    who: () => roomOnly((room) => session.ask({ type: "who", room: room.name }, ["members"], (answer) => {
      session.on_members(answer);
      const away = new Set(answer.away.map(fold));
      const names = answer.nicks.map((nick) => (away.has(fold(nick)) ? `${nick} (away)` : nick));
      session.info(room, `In #${room.name} (${names.length}): ${names.join(", ")}`);
    })),
    rooms: () => session.ask({ type: "rooms" }, ["rooms"], (answer) => {
      const lines = answer.rooms.map((r) => `#${r.name} (${r.members})${r.topic ? ` — ${r.topic}` : ""}`);
      session.info(here(), lines.length ? `Rooms:\n${lines.join("\n")}` : "There are no rooms.");
    }),
    away: (message) => session.send({ type: "away", message }),
    history: (count) => roomOnly((room) => {
      if (!session.online) return "not connected";
      session.history.ask(room, { limit: count }).then((added) => {
        session.info(room, `Loaded the last ${count} messages (${added} new here).`);
        const first = room.entries.filter((e) => e.id !== undefined).slice(-count)[0];
        if (first) session.ui.reveal(room, first.key);
      });
      return null;
    }),
    search: (text) => (session.ui.search(text), null),
    time: () => session.ask({ type: "time" }, ["time"], (answer) => {
      session.info(here(), `Server time: ${new Date(answer.time * 1000).toLocaleString()} (${answer.iso})`);
    }),
    register: (password) => {
      session.pending.register = password;
      return session.send({ type: "register", password });
    },
    login: (nick, password) => {
      session.pending.login = { nick, password };
      return session.send({ type: "login", nick, password });
    },
    logout: () => session.send({ type: "logout" }),
    password: (old, now) => {
      session.pending.password = now;
      return session.send({ type: "password", old, new: now });
    },
    whois: (nick) => session.ask({ type: "whois", nicks: [nick] }, ["users"], (answer) => {
      const [user] = answer.users;
      if (!user) {
        session.info(here(), `${nick} is not online.`);
        return;
      }
      const facts = [user.account ? `registered as ${user.account}` : "a guest"];
      if (user.server_operator) facts.push("a server operator");
      if (user.away) facts.push(`away: ${user.away}`);
      facts.push(user.rooms.length ? `in ${user.rooms.map((r) => `#${r}`).join(", ")}` : "in no room");
      facts.push(`idle ${Math.round(user.idle / 60)} min`);
      session.info(here(), `${user.nick}: ${facts.join("; ")}`);
    }),
    // --- moderation: the server says who may ------------------------------------------------
    op: (nick, room) => forRoom("op", { nick }, room),
    deop: (nick, room) => forRoom("deop", { nick }, room),
    voice: (nick, room) => forRoom("voice", { nick }, room),
    devoice: (nick, room) => forRoom("devoice", { nick }, room),
    kick: (nick, reason, room) => forRoom("kick", { nick, reason }, room),
    ban: (mask, room) => forRoom("ban", { mask }, room),
    unban: (mask, room) => forRoom("unban", { mask }, room),
    bans: () => roomOnly((room) => session.ask({ type: "bans", room: room.name }, ["bans"], (answer) => {
      session.on_bans(answer);
      session.info(room, session.banLines(room.name, answer.bans));
    })),
    invite: (nick, roomName) => {
      if (roomName) return session.send({ type: "invite", room: roomName, nick });
      return roomOnly((room) => session.send({ type: "invite", room: room.name, nick }));
    },
    mode: (changes) => roomOnly((room) => {
      if (changes) return session.send({ type: "mode", room: room.name, changes });
      return session.ask({ type: "mode", room: room.name }, ["modes"], (answer) => {
        session.on_modes(answer);
        session.info(room, `#${room.name}: ${modeNames(answer.modes)}; ${answer.owner
          ? `claimed by the account ${answer.owner}` : "not claimed"}.`);
      });
    }),
    claim: () => roomOnly((room) => session.send({ type: "claim", room: room.name })),
    kill: (nick, reason) => session.send({ type: "kill", nick, reason }),
    gban: (mask, duration, reason) => session.send({ type: "gban", mask, duration, reason }),
    ungban: (mask) => session.send({ type: "ungban", mask }),
    gbans: () => session.ask({ type: "gbans" }, ["bans"], (answer) => {
      session.info(here(), session.banLines(null, answer.bans));
    }),
    wall: (text) => session.send({ type: "wall", text }),
    help: (lines) => {
      session.info(here(), ["Commands:", ...lines.map(([usage, help]) => `${usage} — ${help}`)].join("\n"));
      return null;
    },
    quit: (reason) => {
      const error = session.send({ type: "quit", reason });
      if (!error) {
        session.connection.wanted = false;
        session.leaving = "quit";
      }
      return error;
    },
  };
}
