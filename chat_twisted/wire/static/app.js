// app.js — wires the page together: the login form, the session, the state and the views, the
// message field and its commands, the join form, search, notifications, a member's menu and the
// room's settings. The other modules each own one job; this one only connects them to the page's
// elements.

import { ChatState } from "./state.js";
import { ChatSession } from "./session.js";
import { ChatView } from "./view.js";
import { Composer } from "./composer.js";
import { runLine } from "./commands.js";
import { commandApi } from "./actions.js";
import { Notifier } from "./notify.js";
import { SearchPanel } from "./search.js";
import { fold } from "./format.js";
import { MemberMenu } from "./membermenu.js";
import { RoomPanel } from "./roompanel.js";
import { askReason, setUpReasonDialog } from "./dialogs.js";

const $ = (id) => document.getElementById(id);

const state = new ChatState();
const view = new ChatView(state, {
  select: (conversation) => select(conversation),
  openPrivate: (nick) => {
    session.openPrivate(nick);
    $("message-input").focus();
  },
  needOlder: (conversation) => session.history.loadOlder(conversation),
  needGap: (conversation, gap) => session.history.loadGap(conversation, gap),
  memberMenu: (nick, anchor) => memberMenu.toggle(nick, anchor),
  membersShown: (list) => memberMenu.reattach(list),
  roomSettings: () => {
    if (state.active && state.active.kind === "room") roomPanel.open(state.active);
  },
});

const session = new ChatSession(state, {
  showChat: () => {
    view.showChat();
    $("message-input").focus();
  },
  showLogin: (message) => {
    view.showLogin();
    $("login-error").textContent = message || "";
    $("login-button").disabled = false;
    $("register-button").disabled = false;
    $("login-nick").focus();
  },
  loginError: (message) => {
    $("login-error").textContent = message;
    $("login-button").disabled = false;
    $("register-button").disabled = false;
  },
  status: (status) => view.status(status),
  error: (message) => view.error(message),
  reveal: (conversation, key) => {
    if (state.active !== conversation) state.activate(conversation);
    render();
    view.logOf(conversation)?.reveal(key);
  },
  notify: (title, body, key) => notifier.notify(title, body, key),
  searchResults: (event) => search.show(event),
  search: (text) => search.search(text),
});

const notifier = new Notifier($("notify-button"), (key) => {
  const conversation = state.conversations.get(key);
  if (conversation) select(conversation);
});
const search = new SearchPanel(session, window.matchMedia("(max-width: 760px)"));

// --- rendering, batched: many state changes from one event make one update ---------------------

const dirty = { list: false, me: false, members: false, header: false, conversations: new Set() };
let scheduled = false;

state.onChange(({ what, key }) => {
  if (what === "list") dirty.list = true;
  else if (what === "me") dirty.me = true;
  else if ((what === "members" || what === "modes") && key === state.activeKey) dirty.members = true;
  else if (what === "topic" && key === state.activeKey) dirty.header = true;
  else if (what === "conversation") dirty.conversations.add(key);
  if (!scheduled) {
    scheduled = true;
    queueMicrotask(render);
  }
});

function render() {
  scheduled = false;
  if (dirty.list) view.renderList();
  else {
    if (dirty.members) view.renderMembers();
    if (dirty.header) view.renderHeader();
  }
  if (dirty.me) view.renderMe();
  for (const key of dirty.conversations) view.renderConversation(key);
  dirty.list = dirty.me = dirty.members = dirty.header = false;
  dirty.conversations.clear();
}

function select(conversation) {
  state.activate(conversation);
  render();
  if (!window.matchMedia("(max-width: 760px)").matches) $("message-input").focus();
}

// --- reading: a conversation on screen in a visible page is read -------------------------------

function seen() {
  state.pageVisible = !document.hidden;
  if (state.pageVisible && state.active) state.markRead(state.active);
}
document.addEventListener("visibilitychange", seen);
window.addEventListener("focus", seen);

// --- the login form --------------------------------------------------------------------------

const loginForm = $("login-form");
const nickField = $("login-nick");
const passwordField = $("login-password");
nickField.value = localStorage.getItem("chat_twisted.nick") || "";

function startLogin(register) {
  const nick = nickField.value.trim();
  const password = passwordField.value;
  if (!nick) {
    $("login-error").textContent = "Choose a nickname.";
    nickField.focus();
    return;
  }
  if (register && !password) {
    $("login-error").textContent = "Choose a password to register this nickname with.";
    passwordField.focus();
    return;
  }
  $("login-error").textContent = "";
  $("login-status").textContent = "Logging in…";
  localStorage.setItem("chat_twisted.nick", nick);
  passwordField.value = "";
  session.logIn(nick, password, register);
}

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  startLogin(false);
});
$("register-button").addEventListener("click", () => startLogin(true));

// --- the message field -------------------------------------------------------------------------

const api = commandApi(session);

new Composer($("message-input"), $("composer"), {
  onSend: (line) => {
    const error = runLine(line, api);
    if (error) {
      view.error(error);
      return false;
    }
    view.clearError();
    return true;
  },
  nicks: () => completionNicks(),
});

/** The active room's members, the ones who spoke last first; never ourselves. */
function completionNicks() {
  const conversation = state.active;
  if (!conversation) return [];
  if (conversation.kind === "private") return [conversation.name];
  const me = state.me ? fold(state.me) : null;
  const order = [];
  const seenNicks = new Set([me]);
  for (let i = conversation.entries.length - 1; i >= 0 && order.length < 50; i--) {
    const nick = conversation.entries[i].nick;
    if (nick && !seenNicks.has(fold(nick)) && conversation.members.has(fold(nick))) {
      seenNicks.add(fold(nick));
      order.push(conversation.members.get(fold(nick)).nick);
    }
  }
  for (const member of conversation.memberList()) {
    if (!seenNicks.has(fold(member.nick))) order.push(member.nick);
  }
  return order;
}

// --- a member's menu and the room's settings ---------------------------------------------------

/** Show what went wrong with a request that could not be sent (the server's errors show anyway). */
function report(error) {
  if (error) view.error(error);
}

/** What we may do to `nick`, a member of the room shown: all may talk and ask; operators more. */
function memberItems(nick) {
  const room = state.active;
  const items = [
    { label: "Private message", run: () => view.handlers.openPrivate(nick) },
    { label: "Who is this?", run: () => report(api.whois(nick)) },
  ];
  const member = room && room.kind === "room" ? room.members.get(fold(nick)) : null;
  if (member && state.isOperator(room)) {
    items.push(member.operator
      ? { label: "Remove operator", run: () => report(api.deop(nick, room)) }
      : { label: "Make operator", run: () => report(api.op(nick, room)) });
    items.push(member.voiced
      ? { label: "Take voice", run: () => report(api.devoice(nick, room)) }
      : { label: "Give voice", run: () => report(api.voice(nick, room)) });
    items.push({
      label: "Kick…",
      run: async () => {
        const reason = await askReason({ title: `Kick ${nick} from #${room.name}`, confirm: "Kick" });
        if (reason !== null) report(api.kick(nick, reason, room));
      },
    });
    items.push({ label: "Ban", run: () => report(api.ban(nick, room)) });
  }
  if (state.serverOperator) {
    items.push({
      label: "Disconnect from the server…",
      run: async () => {
        const reason = await askReason({ title: `Disconnect ${nick} from the server`, confirm: "Disconnect" });
        if (reason !== null) report(api.kill(nick, reason));
      },
    });
  }
  return items;
}

const memberMenu = new MemberMenu($("member-menu"), memberItems);
const roomPanel = new RoomPanel(state, session);
setUpReasonDialog();

// --- the rest of the chrome --------------------------------------------------------------------

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const field = $("join-room");
  const name = field.value.trim().replace(/^#/, "");
  if (!name) return;
  const error = session.join(name);
  if (error) view.error(error);
  else field.value = "";
});

$("leave-button").addEventListener("click", () => {
  const error = session.leave(state.active);
  if (error) view.error(error);
});

$("logout-button").addEventListener("click", () => session.logOut());

window.addEventListener("online", () => session.connection.retryNow());

nickField.focus();
