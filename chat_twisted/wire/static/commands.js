// commands.js — the slash commands of the terminal, for the message field: turns one typed line
// into a call on the chat (`api`), or says what is wrong with it. A line that does not start
// with a single "/" is a message ("//text" sends "/text"). No DOM, no socket.

/** Every command: its usage, what it does, and how it runs. */
export const COMMANDS = {
  me: { usage: "/me TEXT", help: "describe an action", run: (api, args) => need(args, "/me TEXT") || api.act(args) },
  msg: {
    usage: "/msg NICK TEXT", help: "send a private message that only NICK sees",
    run: (api, args) => {
      const [nick, text] = splitFirst(args);
      return nick && text.trim() ? api.msg(nick, text) : usage("/msg NICK TEXT");
    },
  },
  nick: { usage: "/nick NEW", help: "change your nickname", run: (api, args) => need(args, "/nick NEW") || api.nick(args.trim()) },
  join: {
    usage: "/join ROOM", help: "enter ROOM (created if new)",
    run: (api, args) => need(args, "/join ROOM") || api.join(args.trim().replace(/^#/, "")),
  },
  part: { usage: "/part [REASON]", help: "leave this room (or close this private conversation)", run: (api, args) => api.part(args.trim()) },
  topic: { usage: "/topic [TEXT]", help: "show this room's topic, or set it to TEXT", run: (api, args) => api.topic(args.trim() ? args : null) },
  who: { usage: "/who", help: "list the users in this room", run: (api) => api.who() },
  rooms: { usage: "/rooms", help: "list every room with its member count and topic", run: (api) => api.rooms() },
  away: { usage: "/away [MESSAGE]", help: "mark yourself away (without a message: back)", run: (api, args) => api.away(args.trim()) },
  history: {
    usage: "/history [N]", help: "load the last N messages of this room (default 20, at most 500)",
    run: (api, args) => {
      const text = args.trim();
      if (text && !/^\d+$/.test(text)) return usage("/history [N], N a whole number");
      const count = text ? Number(text) : 20;
      if (count < 1) return usage("/history [N], N at least 1");
      return api.history(Math.min(count, 500));
    },
  },
  search: { usage: "/search TEXT", help: "find messages in the rooms you are in", run: (api, args) => need(args, "/search TEXT") || api.search(args.trim()) },
  time: { usage: "/time", help: "show the server's date and time", run: (api) => api.time() },
  register: {
    usage: "/register PASSWORD", help: "register your nickname so that only you can use it",
    run: (api, args) => need(args, "/register PASSWORD") || api.register(args.trim()),
  },
  login: {
    usage: "/login NICK PASSWORD", help: "log in to a registered nickname",
    run: (api, args) => {
      const words = args.trim().split(/\s+/);
      return words.length === 2 && words[0] ? api.login(words[0], words[1]) : usage("/login NICK PASSWORD");
    },
  },
  logout: { usage: "/logout", help: "log out and choose a nickname anew", run: (api) => api.logout() },
  password: {
    usage: "/password OLD NEW", help: "change your password",
    run: (api, args) => {
      const words = args.trim().split(/\s+/);
      return words.length === 2 && words[0] ? api.password(words[0], words[1]) : usage("/password OLD NEW");
    },
  },
  whois: { usage: "/whois NICK", help: "who NICK is: account, rooms, away, idle", run: (api, args) => one(args, "/whois NICK", api.whois) },
  // Moderation: the server refuses what you may not do.
  op: { usage: "/op NICK", help: "make NICK an operator of this room", run: (api, args) => one(args, "/op NICK", api.op) },
  deop: { usage: "/deop NICK", help: "take NICK's operator status in this room", run: (api, args) => one(args, "/deop NICK", api.deop) },
  voice: { usage: "/voice NICK", help: "let NICK speak while this room is moderated", run: (api, args) => one(args, "/voice NICK", api.voice) },
  devoice: { usage: "/devoice NICK", help: "take NICK's voice in this room", run: (api, args) => one(args, "/devoice NICK", api.devoice) },
  kick: {
    usage: "/kick NICK [REASON]", help: "remove NICK from this room",
    run: (api, args) => {
      const [nick, reason] = splitFirst(args);
      return nick ? api.kick(nick, reason.trim()) : usage("/kick NICK [REASON]");
    },
  },
  ban: {
    usage: "/ban MASK", help: "keep MASK out of this room: a nickname (* and ? allowed), account:NAME, or an address or network",
    run: (api, args) => one(args, "/ban MASK", api.ban),
  },
  unban: { usage: "/unban MASK", help: "lift a ban of this room", run: (api, args) => one(args, "/unban MASK", api.unban) },
  bans: { usage: "/bans", help: "list this room's bans", run: (api) => api.bans() },
  invite: {
    usage: "/invite NICK [ROOM]", help: "let NICK into this room (or ROOM) even when it is invite-only",
    run: (api, args) => {
      const words = args.trim().split(/\s+/).filter(Boolean);
      return words.length === 1 || words.length === 2
        ? api.invite(words[0], words[1] ? words[1].replace(/^#/, "") : null) : usage("/invite NICK [ROOM]");
    },
  },
  mode: {
    usage: "/mode [+|-][imt]", help: "show this room's modes, or change them: i invite-only, m moderated, t topic locked",
    run: (api, args) => {
      const changes = args.trim();
      if (changes && !/^[+-]?[a-z+-]+$/i.test(changes)) return usage("/mode [+|-][imt], e.g. /mode +m or /mode -i+t");
      return api.mode(changes ? (/^[+-]/.test(changes) ? changes : `+${changes}`) : null);
    },
  },
  claim: { usage: "/claim", help: "keep this room's operators, bans and modes for your registered account", run: (api) => api.claim() },
  kill: {
    usage: "/kill NICK [REASON]", help: "(server operators) disconnect NICK from the server",
    run: (api, args) => {
      const [nick, reason] = splitFirst(args);
      return nick ? api.kill(nick, reason.trim()) : usage("/kill NICK [REASON]");
    },
  },
  gban: {
    usage: "/gban MASK [DURATION] [REASON]",
    help: "(server operators) ban an account:NAME, address or network from the server, e.g. for 7d, 12h or 30m",
    run: (api, args) => {
      const [mask, rest] = splitFirst(args);
      if (!mask) return usage("/gban MASK [DURATION] [REASON]");
      const [first, after] = splitFirst(rest);
      const timed = /^\d+[smhdw]?$/i.test(first);
      return api.gban(mask, timed ? first : null, (timed ? after : rest).trim());
    },
  },
  ungban: { usage: "/ungban MASK", help: "(server operators) lift a server ban", run: (api, args) => one(args, "/ungban MASK", api.ungban) },
  gbans: { usage: "/gbans", help: "(server operators) list the server bans", run: (api) => api.gbans() },
  wall: { usage: "/wall TEXT", help: "(server operators) send TEXT to everyone online", run: (api, args) => need(args, "/wall TEXT") || api.wall(args.trim()) },
  help: { usage: "/help", help: "show this list", run: (api) => api.help(helpLines()) },
  quit: { usage: "/quit [REASON]", help: "leave the chat", run: (api, args) => api.quit(args.trim()) },
};

function usage(text) {
  return `usage: ${text}`;
}

function need(args, text) {
  return args.trim() ? null : usage(text);
}

/** A command of exactly one word (a nick, a mask): run(word), or its usage. */
function one(args, text, run) {
  const words = args.trim().split(/\s+/).filter(Boolean);
  return words.length === 1 ? run(words[0]) : usage(text);
}

function splitFirst(args) {
  const match = /^\s*(\S+)\s?([\s\S]*)$/.exec(args);
  return match ? [match[1], match[2]] : ["", ""];
}

/** Every command with what it does, for /help. */
export function helpLines() {
  return [...Object.values(COMMANDS).map((c) => [c.usage, c.help]), ["//TEXT", "send a message that starts with /"]];
}

/** A typed line: {text} to send as a message, or {command, args}. */
export function parseLine(line) {
  if (line.startsWith("//")) return { text: line.slice(1) };
  const match = /^\/(\S+)(?:\s([\s\S]*))?$/.exec(line);
  if (!match) return { text: line };
  return { command: match[1].toLowerCase(), args: match[2] || "" };
}

/**
 * Run one line against `api` (say, act, msg, nick, join, part, topic, who, rooms, away,
 * history, search, time, register, login, logout, password, whois, the moderation commands,
 * help, quit). Returns an error message to show, or null.
 */
export function runLine(line, api) {
  const parsed = parseLine(line);
  if (parsed.text !== undefined) {
    return parsed.text.trim() ? api.say(parsed.text) : null;
  }
  const command = COMMANDS[parsed.command];
  if (!command) return `unknown command /${parsed.command}; type /help for the list`;
  return command.run(api, parsed.args) || null;
}

/** Command names starting with `prefix`, for completing "/jo" to "/join ". */
export function commandNames(prefix) {
  return Object.keys(COMMANDS).filter((name) => name.startsWith(prefix));
}
