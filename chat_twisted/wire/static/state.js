// state.js — owns what the page knows: the conversations (rooms and private ones), each with its
// messages kept in order and merged by id (so history and live messages never double up), the
// gaps in its history, topic, members (with who operates the room and who has a voice), the room's
// modes, owner and bans as far as they are known, and unread and mention counts. No DOM and no
// socket: the session changes it, the views read it after `onChange` says what changed.

import { connectionLost, coverage, cover, gap, headGap, liveArrived } from "./gaps.js";
import { fold, mentions } from "./format.js";

let sequence = 0; // orders the entries that have no store id (notices, private messages)

/** One conversation: a room, or a private conversation with one user. */
export class Conversation {
  constructor(kind, name) {
    this.kind = kind;               // "room" or "private"
    this.name = name;               // the room's name or the other user's nick, as last seen
    this.key = conversationKey(kind, name);
    this.entries = [];              // sorted by [major, minor]
    this.byKey = new Map();         // entry key -> entry
    this.gaps = kind === "room" ? [gap(-Infinity, Infinity)] : [];
    this.topic = { text: "", nick: "", time: null };
    this.members = new Map();       // folded nick -> {nick, away, operator, voiced}
    this.modes = null;              // the room's modes ("imt" letters) once known, else null
    this.owner = null;              // the account that claimed the room, once known
    this.bans = null;               // [{mask, by, time, expires, reason}] once asked, else null
    this.joined = kind === "room";
    this.unread = 0;
    this.mentions = 0;
    this.unreadFrom = null;         // key of the first entry not seen yet (the "new" divider)
    this.loading = false;           // a history request is on its way
    this.version = 0;               // bumped on every change to entries or gaps
  }

  /** The newest store id loaded, or null. */
  newestId() {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      if (this.entries[i].id !== undefined) return this.entries[i].id;
    }
    return null;
  }

  /** The oldest store id loaded, or null. */
  oldestId() {
    const first = this.entries.find((entry) => entry.id !== undefined);
    return first ? first.id : null;
  }

  /** Whether older history may still be there to load. */
  hasOlder() {
    return headGap(this.gaps) !== null;
  }

  memberList() {
    return [...this.members.values()].sort((x, y) => fold(x.nick).localeCompare(fold(y.nick)));
  }
}

export function conversationKey(kind, name) {
  return `${kind}:${fold(name)}`;
}

function compare(x, y) {
  return x.major - y.major || x.minor - y.minor;
}

/** Everything the page knows, with one change callback. */
export class ChatState {
  constructor() {
    this.me = null;                 // our nickname once welcomed
    this.account = null;
    this.away = false;
    this.serverOperator = false;    // whether our account is one of the server's operators
    this.conversations = new Map(); // key -> Conversation, in the order they were opened
    this.activeKey = null;
    this.listeners = new Set();
    this.pageVisible = true;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  /** Tell the views what changed: {what: "conversation"|"list"|"members"|"topic"|"me"|"modes", key}. */
  changed(what, key = null) {
    for (const listener of this.listeners) listener({ what, key });
  }

  /** Forget everything (after logging out or leaving). */
  reset() {
    this.me = null;
    this.account = null;
    this.away = false;
    this.serverOperator = false;
    this.conversations.clear();
    this.activeKey = null;
    this.changed("list");
    this.changed("me");
  }

  // --- conversations ---------------------------------------------------------------------

  get(kind, name) {
    return this.conversations.get(conversationKey(kind, name)) || null;
  }

  /** The conversation, made if new. */
  open(kind, name) {
    let conversation = this.get(kind, name);
    if (!conversation) {
      conversation = new Conversation(kind, name);
      this.conversations.set(conversation.key, conversation);
      this.changed("list");
    }
    return conversation;
  }

  remove(conversation) {
    this.conversations.delete(conversation.key);
    if (this.activeKey === conversation.key) {
      const next = [...this.conversations.values()].find((c) => c.kind === "room") ||
        this.conversations.values().next().value;
      this.activeKey = next ? next.key : null;
    }
    this.changed("list");
  }

  rooms() {
    return [...this.conversations.values()].filter((c) => c.kind === "room");
  }

  privates() {
    return [...this.conversations.values()].filter((c) => c.kind === "private");
  }

  get active() {
    return this.conversations.get(this.activeKey) || null;
  }

  /** Show a conversation: it is read from now on. */
  activate(conversation) {
    const previous = this.active;
    if (previous && previous !== conversation) {
      previous.unreadFrom = null;
      previous.version++;
    }
    this.activeKey = conversation.key;
    this.markRead(conversation);
    this.changed("list");
  }

  /** The reader sees the conversation: clear its counts (the "new" divider stays while it is shown). */
  markRead(conversation) {
    if (conversation.unread || conversation.mentions) {
      conversation.unread = 0;
      conversation.mentions = 0;
      this.changed("list");
    }
  }

  /** Totals for the title and the narrow-screen menu button. */
  totals() {
    let unread = 0;
    let mentions = 0;
    for (const c of this.conversations.values()) {
      unread += c.unread;
      mentions += c.mentions;
    }
    return { unread, mentions };
  }

  // --- messages --------------------------------------------------------------------------

  _insert(conversation, entry) {
    const existing = conversation.byKey.get(entry.key);
    if (existing) return null;
    const list = conversation.entries;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compare(list[mid], entry) <= 0) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, entry);
    conversation.byKey.set(entry.key, entry);
    return entry;
  }

  /** A stored message ({id, kind, nick, text, time}) as an entry. */
  _stored(message) {
    const own = this.me !== null && fold(message.nick) === fold(this.me);
    const talk = message.kind === "say" || message.kind === "action" || message.kind === "notice";
    return {
      key: `m${message.id}`, id: message.id, major: message.id, minor: 0,
      kind: message.kind, nick: message.nick, text: message.text, time: message.time,
      own, mention: talk && !own && mentions(message.text, this.me),
    };
  }

  /** A page of history: merge by id and note what part of history it proves complete. */
  addHistory(conversation, messages, request = {}) {
    let added = 0;
    for (const message of messages) {
      if (this._insert(conversation, this._stored(message))) added++;
    }
    conversation.gaps = cover(conversation.gaps, coverage(messages, request));
    conversation.version++;
    this.changed("conversation", conversation.key);
    return added;
  }

  /** A live room message (or topic change): returns the entry, or null if it was there already. */
  addLive(conversation, message) {
    const entry = this._insert(conversation, this._stored(message));
    conversation.gaps = liveArrived(conversation.gaps, message.id);
    if (!entry) return null;
    if (!entry.own && entry.kind !== "topic") this._count(conversation, entry);
    if (entry.own) conversation.unreadFrom = null;
    conversation.version++;
    this.changed("conversation", conversation.key);
    return entry;
  }

  /** A private message, to or from us. */
  addPrivate(conversation, message) {
    sequence++;
    const entry = {
      key: `p${sequence}`, major: sequence, minor: 0,
      kind: message.action ? "action" : message.notice ? "notice" : "say",
      nick: message.from, text: message.text, time: message.time,
      own: message.echo, mention: false, stored: message.stored,
    };
    this._insert(conversation, entry);
    if (!entry.own) this._count(conversation, entry, true);
    else conversation.unreadFrom = null;
    conversation.version++;
    this.changed("conversation", conversation.key);
    return entry;
  }

  /** A quiet line of our own making: joins, parts, nick changes, answers to commands. */
  addNotice(conversation, text, { kind = "event", time = Date.now() / 1000, nick = null, extra = null } = {}) {
    sequence++;
    const major = conversation.kind === "room" ? (conversation.newestId() ?? 0) : sequence;
    const entry = { key: `n${sequence}`, major, minor: conversation.kind === "room" ? sequence : 1,
      kind, nick, text, time, own: false, mention: false, extra };
    this._insert(conversation, entry);
    conversation.version++;
    this.changed("conversation", conversation.key);
    return entry;
  }

  _count(conversation, entry, direct = false) {
    const seen = conversation.key === this.activeKey && this.pageVisible;
    if (seen) return;
    if (conversation.unreadFrom === null) conversation.unreadFrom = entry.key;
    conversation.unread++;
    if (entry.mention || direct) conversation.mentions++;
    this.changed("list");
  }

  // --- connection ------------------------------------------------------------------------

  /** The connection dropped: every room may miss what is said until we are back. */
  connectionLost() {
    for (const room of this.rooms()) {
      room.gaps = connectionLost(room.gaps, room.newestId());
      room.joined = false;
      room.loading = false;
      room.version++;
    }
    this.changed("list");
  }

  // --- members ---------------------------------------------------------------------------

  setMembers(room, nicks, away, operators = [], voiced = []) {
    const awayKeys = new Set(away.map(fold));
    const operatorKeys = new Set(operators.map(fold));
    const voicedKeys = new Set(voiced.map(fold));
    room.members = new Map(nicks.map((nick) => [fold(nick), {
      nick, away: awayKeys.has(fold(nick)), operator: operatorKeys.has(fold(nick)), voiced: voicedKeys.has(fold(nick)),
    }]));
    this.changed("members", room.key);
  }

  addMember(room, nick) {
    room.members.set(fold(nick), { nick, away: false, operator: false, voiced: false });
    this.changed("members", room.key);
  }

  /** A member became (value true) or stopped being an operator (flag "operator") or voiced ("voiced"). */
  setMemberFlag(room, nick, flag, value) {
    const member = room.members.get(fold(nick));
    if (!member || member[flag] === value) return;
    member[flag] = value;
    this.changed("members", room.key);
    if (this.isMe(nick)) this.changed("modes", room.key); // what we may do there changed
  }

  /** Whether `nick` is our own nickname. */
  isMe(nick) {
    return this.me !== null && fold(nick) === fold(this.me);
  }

  /** Whether we may do an operator's things in `room`: we operate it, or the whole server. */
  isOperator(room) {
    if (this.serverOperator) return true;
    if (!room || room.kind !== "room" || this.me === null) return false;
    return Boolean(room.members.get(fold(this.me))?.operator);
  }

  /** The room's modes and owner, as the server said. */
  setModes(room, modes, owner = room.owner) {
    room.modes = modes;
    room.owner = owner;
    this.changed("modes", room.key);
  }

  /** One mode letter of the room on or off (known from a mode change). */
  setMode(room, letter, on) {
    const letters = new Set(room.modes || "");
    if (on) letters.add(letter);
    else letters.delete(letter);
    room.modes = [...letters].sort().join("");
    this.changed("modes", room.key);
  }

  /** The room's bans, as the server listed them. */
  setBans(room, bans) {
    room.bans = bans;
    this.changed("modes", room.key);
  }

  /** A ban set or lifted (known from a mode change): kept in the list if the list is known. */
  changeBan(room, mask, by, added) {
    if (room.bans !== null) {
      room.bans = room.bans.filter((ban) => ban.mask !== mask);
      if (added) {
        room.bans.push({ mask, by, time: Date.now() / 1000, expires: null, reason: "" });
        room.bans.sort((x, y) => (x.mask < y.mask ? -1 : x.mask > y.mask ? 1 : 0));
      }
    }
    this.changed("modes", room.key);
  }

  removeMember(room, nick) {
    room.members.delete(fold(nick));
    this.changed("members", room.key);
  }

  /** A nick changed: members, private conversations and (for us) our own name follow. */
  renameUser(old, now) {
    const changed = [];
    for (const room of this.rooms()) {
      const member = room.members.get(fold(old));
      if (member) {
        room.members.delete(fold(old));
        room.members.set(fold(now), { ...member, nick: now });
        changed.push(room);
        this.changed("members", room.key);
      }
    }
    const conversation = this.get("private", old);
    if (conversation && (fold(old) === fold(now) || !this.get("private", now))) {
      const wasActive = this.activeKey === conversation.key;
      this.conversations.delete(conversation.key);
      conversation.name = now;
      conversation.key = conversationKey("private", now);
      this.conversations.set(conversation.key, conversation);
      if (wasActive) this.activeKey = conversation.key;
      this.changed("list");
    }
    if (this.me !== null && fold(this.me) === fold(old)) {
      this.me = now;
      this.changed("me");
    }
    return { rooms: changed, conversation };
  }

  setAway(nick, message) {
    for (const room of this.rooms()) {
      const member = room.members.get(fold(nick));
      if (member) {
        member.away = Boolean(message);
        this.changed("members", room.key);
      }
    }
  }
}
