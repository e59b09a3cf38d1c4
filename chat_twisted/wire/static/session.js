// session.js — the chat client between the socket and the state: logging in (and in again after
// a lost connection, with the same nick and the password kept only in memory), rejoining rooms,
// turning each server event into a change of state, and sending requests. History paging lives in
// history.js, the slash commands' requests in actions.js. No DOM: the page hears about what needs
// its attention through the `ui` callbacks.

import { Connection } from "./connection.js";
import { fold } from "./format.js";
import { HistoryLoader } from "./history.js";
import { banLine, kick, modeChange, untilWords } from "./moderation.js";

export class ChatSession {
  /**
   * ui: showChat(), showLogin(message), loginError(message), status({state, seconds}),
   * error(message), reveal(conversation, key), notify(title, body, key), searchResults(event).
   */
  constructor(state, ui) {
    this.state = state;
    this.ui = ui;
    this.connection = new Connection({
      onOpen: () => this._opened(),
      onEvent: (event) => this._event(event),
      onClose: (info) => this._closed(info),
      // "connected" once logged in again, not when the socket opens.
      onStatus: (status) => this.ui.status(status.state === "connected" && !this.loggedIn
        ? { state: "connecting" } : status),
    });
    this.credentials = null;   // {nick, password, register}: kept in memory only
    this.loggedIn = false;
    this.everWelcomed = false;
    this.alternative = 0;      // how many "_" we add when our nick is still held after a drop
    this.wantActive = null;    // folded room name to show once joined
    this.history = new HistoryLoader(this);
    this.pending = {};         // password / login changes waiting for their answer
    this.pendingInfo = [];     // notices that came before any conversation was open
    this.leaving = null;       // "quit" or "logout" while we wait for the server's goodbye
  }

  get online() {
    return this.connection.open && this.loggedIn;
  }

  // --- logging in ------------------------------------------------------------------------

  /** Log in from the login form (register: as a guest, then register the nick with the password). */
  logIn(nick, password, register = false) {
    this.credentials = { nick, password: password || null, register };
    this.alternative = 0;
    if (this.connection.open) this._sendLogin();
    else if (this.connection.wanted) this.connection.retryNow();
    else this.connection.start();
  }

  _opened() {
    if (this.credentials) this._sendLogin();
  }

  _sendLogin() {
    const { nick, password, register } = this.credentials;
    const name = this.alternative ? nick + "_".repeat(this.alternative) : nick;
    const request = { type: "login", nick: name, password: register ? null : password };
    this.connection.send(request, (error) => this._loginFailed(error));
  }

  _loginFailed(error) {
    if (this.everWelcomed && error.code === "nick_in_use" && this.alternative < 3) {
      this.alternative++; // our old connection may still hold the nick for a while
      this._sendLogin();
      return;
    }
    if (this.everWelcomed) {
      this._stop(`Could not log in again: ${error.message}`);
    } else {
      const message = error.code === "nick_registered"
        ? `${error.nick} is registered: enter its password, or choose another nickname.` : error.message;
      this.ui.loginError(message);
    }
  }

  _welcome(event) {
    const first = !this.everWelcomed;
    this.loggedIn = true;
    this.everWelcomed = true;
    this.state.me = event.nick;
    this.state.account = event.account;
    this.state.changed("me");
    this.ui.status({ state: "connected" });
    this._askServerOperator();
    if (first) {
      this.ui.showChat();
      if (this.credentials.register && this.credentials.password) {
        this.pending.register = this.credentials.password;
        this.connection.send({ type: "register", password: this.credentials.password },
          (error) => this.showError(error));
      }
      this.join("lobby");
    } else {
      if (this.alternative) {
        this.info(this.state.active, `You are back as ${event.nick}: ${this.credentials.nick} was still taken.`);
      }
      for (const room of this.state.rooms()) this.history.join(room.name);
    }
  }

  // --- the connection ----------------------------------------------------------------------

  _closed({ willRetry }) {
    this.loggedIn = false;
    this.state.connectionLost();
    this.history.reset();
    if (!willRetry) return;
    if (!this.everWelcomed && this.credentials) {
      this.ui.loginError("Cannot reach the chat server; trying again…");
    }
  }

  _stop(message) {
    this.connection.stop();
    this.credentials = null;
    this.loggedIn = false;
    this.everWelcomed = false;
    this.state.reset();
    this.ui.showLogin(message);
  }

  // --- events ----------------------------------------------------------------------------

  _event(event) {
    const handler = this[`on_${event.type}`];
    if (handler) handler.call(this, event);
  }

  on_welcome(event) {
    this._welcome(event);
  }

  on_joined({ room, nick }) {
    if (this._isMe(nick)) {
      // Our own joins show as the room appearing in the sidebar, not as a line.
      const conversation = this.state.open("room", room);
      conversation.name = room;
      conversation.joined = true;
      if (this.wantActive === fold(room) || !this.state.active) {
        this.wantActive = null;
        this.state.activate(conversation);
      }
      for (const text of this.pendingInfo.splice(0)) this.info(conversation, text);
      this.history.joined(room);
      this.state.changed("list");
      return;
    }
    const conversation = this.state.get("room", room);
    if (!conversation) return;
    this.state.addMember(conversation, nick);
    this._notice(conversation, "joined", { nick, mark: "join", text: `joined #${room}` });
  }

  on_left({ room, nick, reason }) {
    const conversation = this.state.get("room", room);
    if (!conversation) return;
    if (this._isMe(nick)) {
      this.state.remove(conversation);
      return;
    }
    this.state.removeMember(conversation, nick);
    this._notice(conversation, "left", { nick, mark: "part", text: `left #${room}${reason ? ` (${reason})` : ""}` });
  }

  on_quit({ nick, reason, rooms }) {
    for (const name of rooms) {
      const conversation = this.state.get("room", name);
      if (!conversation) continue;
      this.state.removeMember(conversation, nick);
      this._notice(conversation, "quit", { nick, mark: "quit", text: `quit${reason ? ` (${reason})` : ""}` });
    }
    const direct = this.state.get("private", nick);
    if (direct) this._notice(direct, "quit", { nick, mark: "quit", text: `went offline${reason ? ` (${reason})` : ""}` });
  }

  on_nick({ old, new: now }) {
    const mine = this._isMe(old);
    const { rooms, conversation } = this.state.renameUser(old, now);
    const text = mine ? `You are now known as ${now}` : `is now known as ${now}`;
    for (const room of rooms) this._notice(room, "nick", { nick: mine ? null : old, mark: "nick", text });
    if (conversation) this._notice(conversation, "nick", { nick: mine ? null : old, mark: "nick", text });
    if (mine && this.credentials) {
      this.credentials.nick = now;
      this.alternative = 0;
    }
  }

  on_away({ nick, message }) {
    this.state.setAway(nick, message);
    const direct = this.state.get("private", nick);
    if (direct) {
      this._notice(direct, "away", { nick, mark: "away", text: message ? `is away: ${message}` : "is back" });
    }
  }

  on_message(event) {
    const conversation = this.state.get("room", event.room);
    if (!conversation) return;
    const entry = this.state.addLive(conversation, event);
    if (entry && entry.mention) {
      this.ui.notify(`${event.nick} in #${event.room}`, event.text, conversation.key);
    }
  }

  on_private(event) {
    const other = event.echo ? event.to : event.from;
    const conversation = this.state.open("private", other);
    this.state.addPrivate(conversation, event);
    if (!event.echo) this.ui.notify(`${event.from} (private)`, event.text, conversation.key);
  }

  on_recipient_away({ nick, message }) {
    const conversation = this.state.open("private", nick);
    this._notice(conversation, "away", { nick, mark: "away", text: `is away${message ? `: ${message}` : ""}` });
  }

  on_offline_queued({ nick }) {
    const conversation = this.state.open("private", nick);
    this._notice(conversation, "info", { nick, mark: "info", text: "is offline: the message is kept until they log in" });
  }

  on_topic(event) {
    const conversation = this.state.get("room", event.room);
    if (!conversation) return;
    conversation.topic = { text: event.topic, nick: event.nick, time: event.time };
    this.state.addLive(conversation, { id: event.id, kind: "topic", nick: event.nick, text: event.topic, time: event.time });
    this.state.changed("topic", conversation.key);
  }

  on_topic_info(event) {
    const conversation = this.state.get("room", event.room);
    if (!conversation) return;
    conversation.topic = { text: event.topic, nick: event.nick, time: event.time };
    this.state.changed("topic", conversation.key);
  }

  on_members({ room, nicks, away, operators = [], voiced = [] }) {
    const conversation = this.state.get("room", room);
    if (conversation) this.state.setMembers(conversation, nicks, away, operators, voiced);
  }

  // --- moderation ------------------------------------------------------------------------

  on_mode(event) {
    const conversation = this.state.get("room", event.room);
    if (!conversation) return;
    const { change, target } = event;
    const flag = { o: "operator", v: "voiced" }[change[1]];
    if (flag) this.state.setMemberFlag(conversation, target, flag, change[0] === "+");
    else if (change[1] === "b") this.state.changeBan(conversation, target, event.nick, change[0] === "+");
    else if (conversation.modes !== null) this.state.setMode(conversation, change[1], change[0] === "+");
    const { nick, text } = modeChange(event, this.state.me);
    this._notice(conversation, "mode", { nick, mark: change[1] === "b" ? "ban" : "mode", text });
  }

  on_kicked(event) {
    const conversation = this.state.get("room", event.room);
    if (!conversation) return;
    if (this._isMe(event.target)) {
      // We are out of the room: it leaves the list, and we are told why where we are now.
      this.state.remove(conversation);
      const text = `${event.nick} kicked you from #${conversation.name}${event.reason ? ` (${event.reason})` : ""}`;
      this.info(this.state.active, text);
      this.ui.error(text);
      return;
    }
    this.state.removeMember(conversation, event.target);
    this._notice(conversation, "kicked", { nick: event.nick, mark: "kick", text: kick(event, this.state.me) });
  }

  on_invited({ room, nick, target }) {
    if (this._isMe(target)) {
      this.info(this.state.active, `${nick} invited you to #${room}: /join ${room} to enter it.`);
      this.ui.notify(`${nick} invited you to #${room}`, `/join ${room}`, null);
    } else {
      this.info(this.state.get("room", room) || this.state.active, `You invited ${target} to #${room}.`);
    }
  }

  on_claimed({ room, nick, account }) {
    const conversation = this.state.get("room", room);
    if (!conversation) return;
    this.state.setModes(conversation, conversation.modes, account);
    this._notice(conversation, "claimed", {
      nick, mark: "claim", text: `claimed #${room} for the account ${account}: it keeps its operators, bans and modes`,
    });
  }

  on_modes({ room, modes, owner }) {
    const conversation = this.state.get("room", room);
    if (conversation) this.state.setModes(conversation, modes, owner);
  }

  on_bans({ room, bans }) {
    const conversation = room ? this.state.get("room", room) : null;
    if (conversation) this.state.setBans(conversation, bans);
  }

  on_gban({ added, ban }) {
    this.info(this.state.active, added
      ? `Banned ${ban.mask} from the server ${untilWords(ban.expires)}${ban.reason ? ` (${ban.reason})` : ""}.`
      : `Lifted the server ban on ${ban.mask}.`);
  }

  on_killed({ nick, reason }) {
    this._stop(`${nick} disconnected you from the server${reason ? `: ${reason}` : ""}.`);
  }

  on_wall({ nick, text }) {
    const conversation = this.state.active;
    if (conversation) {
      this._notice(conversation, "wall", { nick, mark: "wall", text: `to everyone on the server: ${text}` });
    } else {
      this.pendingInfo.push(`${nick} to everyone on the server: ${text}`);
    }
    this.ui.notify(`${nick} to everyone`, text, conversation ? conversation.key : null);
  }

  /** The bans of a room (or of the server: room null), as lines of information. */
  banLines(room, bans) {
    const where = room ? `#${room}` : "the server";
    return bans.length ? [`Bans of ${where}:`, ...bans.map(banLine)].join("\n") : `No bans in ${where}.`;
  }

  /** Learn whether our account is one of the server's operators (a guest never is). */
  _askServerOperator() {
    const me = this.state.me;
    if (!this.state.account || !me) {
      if (this.state.serverOperator) {
        this.state.serverOperator = false;
        this.state.changed("list");
      }
      return;
    }
    this.connection.ask({ type: "whois", nicks: [me] }, ["users"]).then((answer) => {
      const user = answer.users.find((u) => fold(u.nick) === fold(this.state.me || ""));
      const operator = Boolean(user && user.server_operator);
      if (operator !== this.state.serverOperator) {
        this.state.serverOperator = operator;
        this.state.changed("list");
      }
    }, () => {});
  }

  on_history({ room, messages }) {
    // The history shown on joining (the ones we asked for come back through ask()).
    const conversation = this.state.get("room", room);
    if (!conversation) return;
    this.state.addHistory(conversation, messages, {});
    this.history.fillGaps(conversation);
  }

  on_registered({ nick }) {
    if (this.credentials && this.pending.register) {
      this.credentials.password = this.pending.register;
      this.credentials.register = false;
    }
    delete this.pending.register;
    this.state.account = nick;
    this.state.changed("me");
    this._askServerOperator();
    this.info(this.state.active, `The nickname ${nick} is registered to you now.`);
  }

  on_logged_in({ nick }) {
    if (this.pending.login) {
      this.credentials = { nick: this.pending.login.nick, password: this.pending.login.password, register: false };
      delete this.pending.login;
    }
    this.state.account = nick;
    this.state.changed("me");
    this._askServerOperator();
    this.info(this.state.active, `You are logged in as ${nick}.`);
  }

  on_logged_out() {
    this._stop("You logged out.");
  }

  on_password_changed() {
    if (this.credentials && this.pending.password) this.credentials.password = this.pending.password;
    delete this.pending.password;
    this.info(this.state.active, "Your password is changed.");
  }

  on_away_set({ away }) {
    this.state.away = away;
    this.state.changed("me");
    this.info(this.state.active, away ? "You are marked as away." : "You are back.");
  }

  on_goodbye({ reason }) {
    const message = this.leaving === "logout" ? "You logged out."
      : this.leaving === "quit" ? "You left the chat." : `The server closed the chat: ${reason}.`;
    this.leaving = null;
    this._stop(message);
  }

  on_shutdown() {
    this.info(this.state.active, "The server is restarting; the page will reconnect.");
  }

  on_error(event) {
    if (event.code === "server_banned") {
      // The server closes the connection: trying again would only be refused again.
      this._stop(event.message);
      return;
    }
    if (!this.everWelcomed && event.request === "login") {
      this.ui.loginError(event.message);
      return;
    }
    this.showError(event);
  }

  on_search_results(event) {
    this.ui.searchResults(event);
  }

  // --- requests ----------------------------------------------------------------------------

  /** Join a room (or just show it if we are in it already). */
  join(room) {
    const existing = this.state.get("room", room);
    if (existing && existing.joined) {
      this.state.activate(existing);
      return null;
    }
    this.wantActive = fold(room);
    return this.history.join(room);
  }

  /** Leave a room, or close a private conversation. */
  leave(conversation, reason = "") {
    if (!conversation) return null;
    if (conversation.kind === "private") {
      this.state.remove(conversation);
      return null;
    }
    return this.send({ type: "part", room: conversation.name, reason });
  }

  /** Open (and show) the private conversation with `nick`. */
  openPrivate(nick) {
    const conversation = this.state.open("private", nick);
    this.state.activate(conversation);
    return conversation;
  }

  /** Send a request (its error goes to onError, or is shown); returns an error text when it cannot be sent now. */
  send(request, onError = null) {
    if (!this.online) return "not connected: what you typed stays here until the connection is back";
    this.connection.send(request, onError || ((error) => this.showError(error)));
    return null;
  }

  /** Ask a question; onAnswer gets the answer. Returns an error text when it cannot be asked now. */
  ask(request, answers, onAnswer) {
    if (!this.online) return "not connected";
    this.connection.ask(request, answers).then(onAnswer, (error) => {
      if (error.code !== "not_connected") this.showError(error);
    });
    return null;
  }

  /** Send a search; the answer (or the error) comes back to the ui. */
  search(text, limit = 20, before = null) {
    if (!this.online) return Promise.reject({ code: "not_connected", message: "not connected" });
    const request = { type: "search", text, limit };
    if (before !== null) request.before = before;
    return this.connection.ask(request, ["search_results"]);
  }

  /** Log out on request from the page's button. */
  logOut() {
    if (!this.online) {
      this._stop("You logged out.");
    } else if (this.state.account) {
      this.connection.send({ type: "logout" }); // a registered user: logged_out follows
    } else {
      this.connection.wanted = false; // a guest just leaves: goodbye follows
      this.connection.send({ type: "quit", reason: "logged out" });
      this.leaving = "logout";
    }
  }

  // --- helpers -----------------------------------------------------------------------------

  _isMe(nick) {
    return this.state.me !== null && fold(nick) === fold(this.state.me);
  }

  showError(error) {
    this.ui.error(error.message || String(error.code));
  }

  _notice(conversation, _what, { nick = null, mark, text }) {
    this.state.addNotice(conversation, text, { kind: "event", nick, extra: { mark } });
  }

  /** A line of information in a conversation (or the first one to open). */
  info(conversation, text) {
    if (!conversation) {
      this.pendingInfo.push(text); // shown in the first conversation that opens
      return;
    }
    this.state.addNotice(conversation, text, { kind: "info", extra: { mark: "info" } });
  }
}
