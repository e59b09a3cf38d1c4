// view.js — the page around the message lists: the sidebar's rooms and private conversations
// with their unread and mention counts, the header with the topic, the member list, the
// connection status line, the error next to the message field, the title, and the narrow-screen
// drawers. Each member shows whether they operate the room (@) or have a voice (+), and has a
// button for their menu (the same menu opens on a right click or the context-menu key). It reads
// the state and builds DOM (text only); what a click does is app.js's business.

import { appendLinkified } from "./linkify.js";
import { nickColour } from "./format.js";
import { LogView } from "./logview.js";

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

let describedBy = 0;

export class ChatView {
  /**
   * handlers: select(conversation), openPrivate(nick), needOlder(c), needGap(c, gap),
   * memberMenu(nick, anchor) (open or close the menu of a member, beside `anchor`),
   * membersShown(list) (the member list was built anew), roomSettings().
   */
  constructor(state, handlers) {
    this.state = state;
    this.handlers = handlers;
    this.logs = new Map(); // conversation key -> LogView
    this.shownLog = null;
    this.errorTimer = null;
    this.wide = window.matchMedia("(min-width: 1100px)");
    this.narrow = window.matchMedia("(max-width: 760px)");
    this.membersOpen = this.wide.matches;
    this.wide.addEventListener("change", () => this.setMembersOpen(this.wide.matches));
    this.narrow.addEventListener("change", () => this.setSidebarOpen(false));
    $("sidebar-open").addEventListener("click", () => this.setSidebarOpen(true));
    $("sidebar-close").addEventListener("click", () => this.setSidebarOpen(false));
    $("scrim").addEventListener("click", () => {
      this.setSidebarOpen(false);
      if (!this.wide.matches) this.setMembersOpen(false);
    });
    $("members-toggle").addEventListener("click", () => this.setMembersOpen(!this.membersOpen));
    $("room-button").addEventListener("click", () => this.handlers.roomSettings());
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        if (document.body.classList.contains("sidebar-open")) this.setSidebarOpen(false);
        else if (this.membersOpen && !this.wide.matches) this.setMembersOpen(false);
      }
    });
    this.setMembersOpen(this.membersOpen);
  }

  // --- screens -----------------------------------------------------------------------------

  showChat() {
    $("login").hidden = true;
    $("chat").hidden = false;
  }

  showLogin() {
    $("chat").hidden = true;
    $("login").hidden = false;
    for (const log of this.logs.values()) log.element.remove();
    this.logs.clear();
    this.shownLog = null;
  }

  setSidebarOpen(open) {
    const narrow = this.narrow.matches;
    document.body.classList.toggle("sidebar-open", open && narrow);
    $("sidebar-open").setAttribute("aria-expanded", String(open && narrow));
    this._scrim();
    if (open && narrow) $("sidebar").querySelector("button, input")?.focus();
  }

  setMembersOpen(open) {
    this.membersOpen = open;
    document.body.classList.toggle("members-open", open);
    document.body.classList.toggle("members-closed", !open);
    const toggle = $("members-toggle");
    toggle.setAttribute("aria-expanded", String(open));
    toggle.setAttribute("aria-label", open ? "Hide member list" : "Show member list");
    toggle.title = open ? "Hide member list" : "Show member list";
    this._scrim();
  }

  _scrim() {
    const overlay = document.body.classList.contains("sidebar-open") ||
      (this.membersOpen && !this.wide.matches && document.body.classList.contains("has-members"));
    $("scrim").hidden = !overlay;
  }

  // --- the sidebar -------------------------------------------------------------------------

  renderList() {
    const state = this.state;
    this._fillList($("room-list"), state.rooms(), (c) => ["#", c.name]);
    const privates = state.privates();
    this._fillList($("private-list"), privates, (c) => ["@", c.name]);
    $("privates-empty").hidden = privates.length > 0;
    const { unread, mentions } = state.totals();
    document.title = `${mentions ? `(${mentions}) ` : unread ? "• " : ""}${state.active ? label(state.active) + " – " : ""}chat_twisted`;
    const badge = $("sidebar-badge");
    badge.hidden = !(unread || mentions);
    badge.classList.toggle("hot", mentions > 0);
    this._syncLogs();
    this.renderHeader();
    this.renderMembers();
  }

  _fillList(list, conversations, parts) {
    const items = conversations.map((conversation) => {
      const [mark, name] = parts(conversation);
      const item = element("li");
      const button = element("button", "conv");
      button.type = "button";
      button.dataset.key = conversation.key;
      if (conversation.key === this.state.activeKey) button.setAttribute("aria-current", "page");
      if (conversation.kind === "room" && !conversation.joined) button.classList.add("offline");
      const markNode = element("span", `conv-mark${conversation.kind === "private" ? ` avatar ${nickColour(name)}` : ""}`,
        conversation.kind === "private" ? name.slice(0, 1).toUpperCase() : mark);
      markNode.setAttribute("aria-hidden", "true");
      button.append(markNode, element("span", "conv-name", name));
      if (conversation.unread || conversation.mentions) {
        const counts = [];
        if (conversation.mentions) {
          const hot = element("span", "badge hot", String(conversation.mentions));
          hot.setAttribute("aria-hidden", "true");
          button.append(hot);
          counts.push(`${conversation.mentions} ${conversation.kind === "private" ? "new" : "mentioning you"}`);
        }
        const plain = conversation.unread - (conversation.kind === "private" ? conversation.mentions : 0);
        if (plain > 0) {
          const badge = element("span", "badge", String(conversation.unread));
          badge.setAttribute("aria-hidden", "true");
          button.append(badge);
          counts.push(`${conversation.unread} unread`);
        }
        const description = element("span", "visually-hidden", counts.join(", "));
        description.id = `conv-desc-${++describedBy}`;
        button.setAttribute("aria-describedby", description.id);
        item.append(description);
        button.classList.add("has-unread");
      }
      button.addEventListener("click", () => {
        this.handlers.select(conversation);
        this.setSidebarOpen(false);
      });
      item.append(button);
      return item;
    });
    const focused = document.activeElement?.dataset?.key;
    list.replaceChildren(...items);
    if (focused) list.querySelector(`[data-key="${CSS.escape(focused)}"]`)?.focus();
  }

  // --- the conversation --------------------------------------------------------------------

  renderHeader() {
    const conversation = this.state.active;
    const title = $("conv-title");
    const topic = $("conv-topic");
    const leave = $("leave-button");
    topic.replaceChildren();
    $("room-button").hidden = !conversation || conversation.kind !== "room";
    if (!conversation) {
      title.textContent = "No conversation";
      leave.hidden = true;
      return;
    }
    leave.hidden = false;
    title.replaceChildren();
    if (conversation.kind === "room") {
      const hash = element("span", "conv-title-mark", "#");
      hash.setAttribute("aria-hidden", "true");
      title.append(hash, conversation.name);
      if (conversation.topic.text) {
        appendLinkified(topic, conversation.topic.text);
        topic.title = conversation.topic.nick ? `Set by ${conversation.topic.nick}` : "";
        topic.classList.remove("empty");
      } else {
        topic.textContent = "No topic — set one with /topic TEXT";
        topic.classList.add("empty");
      }
      leave.setAttribute("aria-label", "Leave room");
      leave.title = `Leave #${conversation.name}`;
    } else {
      title.append(conversation.name);
      topic.textContent = "Private conversation";
      topic.classList.add("empty");
      leave.setAttribute("aria-label", "Close conversation");
      leave.title = `Close the conversation with ${conversation.name}`;
    }
    $("message-input").placeholder = conversation.kind === "room"
      ? `Message #${conversation.name}` : `Message ${conversation.name}`;
  }

  renderMembers() {
    const conversation = this.state.active;
    const list = $("member-list");
    const isRoom = conversation && conversation.kind === "room";
    document.body.classList.toggle("has-members", Boolean(isRoom));
    $("members-toggle").hidden = !isRoom;
    this._scrim();
    if (!isRoom) {
      list.replaceChildren();
      $("members-count").textContent = "";
      return;
    }
    const me = this.state.me ? this.state.me.toLowerCase() : null;
    const members = conversation.memberList();
    $("members-count").textContent = String(members.length);
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset : null;
    list.replaceChildren(...members.map((member) => {
      const item = element("li", member.away ? "away" : "");
      const avatar = element("span", `avatar ${nickColour(member.nick)}`, member.nick.slice(0, 1).toUpperCase());
      avatar.setAttribute("aria-hidden", "true");
      const name = [avatar, ...roleMarks(member), element("span", "member-name", member.nick), ...roleWords(member)];
      if (member.nick.toLowerCase() === me) {
        const self = element("span", "member self");
        self.append(...name, element("span", "member-tag", "you"));
        item.append(self);
      } else {
        const key = member.nick.toLowerCase();
        const button = element("button", "member");
        button.type = "button";
        button.title = `Talk privately with ${member.nick}`;
        button.dataset.member = key;
        button.dataset.part = "name";
        button.append(...name);
        button.addEventListener("click", () => {
          this.handlers.openPrivate(member.nick);
          if (!this.wide.matches) this.setMembersOpen(false);
        });
        const actions = element("button", "icon-button member-actions");
        actions.type = "button";
        actions.dataset.member = key;
        actions.dataset.part = "actions";
        actions.setAttribute("aria-label", `Actions for ${member.nick}`);
        actions.title = `Actions for ${member.nick}`;
        actions.setAttribute("aria-haspopup", "menu");
        actions.setAttribute("aria-expanded", "false");
        actions.append(moreIcon());
        actions.addEventListener("click", () => this.handlers.memberMenu(member.nick, actions));
        // A right click, or the context-menu key (Shift+F10), on the member opens the same menu.
        button.addEventListener("contextmenu", (event) => {
          event.preventDefault();
          this.handlers.memberMenu(member.nick, actions);
        });
        item.append(button);
        if (member.away) item.append(element("span", "member-tag", "away"));
        item.append(actions);
        return item;
      }
      if (member.away) item.append(element("span", "member-tag", "away"));
      return item;
    }));
    if (focused?.member) {
      list.querySelector(`[data-member="${CSS.escape(focused.member)}"][data-part="${focused.part}"]`)?.focus();
    }
    this.handlers.membersShown?.(list);
  }

  /** Keep one LogView per conversation, and show the active one. */
  _syncLogs() {
    const container = $("logs");
    this.rekey();
    for (const [key, log] of this.logs) {
      if (!this.state.conversations.has(key) || this.state.conversations.get(key) !== log.conversation) {
        log.element.remove();
        this.logs.delete(key);
      }
    }
    for (const conversation of this.state.conversations.values()) {
      if (!this.logs.has(conversation.key)) {
        const log = new LogView(conversation, {
          onNeedOlder: (c) => this.handlers.needOlder(c),
          onNeedGap: (c, gap) => this.handlers.needGap(c, gap),
        });
        this.logs.set(conversation.key, log);
        container.append(log.element);
        log.update(true);
      }
    }
    const active = this.state.active ? this.logs.get(this.state.active.key) : null;
    if (active !== this.shownLog) {
      if (this.shownLog) this.shownLog.hide();
      this.shownLog = active;
      if (active) active.show();
    }
  }

  /** A renamed private conversation keeps its LogView under its new key. */
  rekey() {
    for (const [key, log] of [...this.logs]) {
      if (log.conversation.key !== key) {
        this.logs.delete(key);
        this.logs.set(log.conversation.key, log);
      }
    }
  }

  renderConversation(key) {
    const log = this.logs.get(key);
    if (log) log.update();
  }

  logOf(conversation) {
    return this.logs.get(conversation.key) || null;
  }

  // --- status and errors -------------------------------------------------------------------

  renderMe() {
    const me = this.state.me || "";
    $("me-nick").textContent = me + (this.state.away ? " (away)" : "");
    const avatar = $("me-avatar");
    avatar.textContent = me.slice(0, 1).toUpperCase();
    avatar.className = `me-avatar avatar ${me ? nickColour(me) : ""}`;
    $("me-account").textContent = this.state.account ? "registered" : "guest";
  }

  status({ state, seconds }) {
    const line = $("status");
    const loginStatus = $("login-status");
    let text = "";
    if (state === "connected") text = "connected";
    else if (state === "connecting") text = "connecting…";
    else if (state === "disconnected") text = `disconnected — retrying in ${seconds} s`;
    line.textContent = text;
    line.className = `status ${state}`;
    loginStatus.textContent = state === "disconnected" ? text : "";
    document.body.classList.toggle("offline", state === "disconnected" || state === "connecting");
  }

  error(message) {
    const alert = $("chat").hidden ? $("login-error") : $("composer-error");
    alert.textContent = message;
    clearTimeout(this.errorTimer);
    this.errorTimer = setTimeout(() => { alert.textContent = ""; }, 10_000);
  }

  clearError() {
    $("composer-error").textContent = "";
  }
}

/** The marks before a member's name: @ for an operator, + for a voice (for the eye; see roleWords). */
function roleMarks(member) {
  const marks = [];
  if (member.operator) marks.push(element("span", "member-mark op", "@"));
  else if (member.voiced) marks.push(element("span", "member-mark voiced", "+"));
  for (const mark of marks) {
    mark.setAttribute("aria-hidden", "true");
    mark.title = member.operator ? "operator" : "voiced";
  }
  return marks;
}

/** The same in words, for a screen reader: ", operator", ", voiced". */
function roleWords(member) {
  const words = [member.operator && "operator", member.voiced && "voiced"].filter(Boolean);
  return words.length ? [element("span", "visually-hidden", `, ${words.join(", ")}`)] : [];
}

/** The "more" icon (three dots) of a member's actions button. */
function moreIcon() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "icon");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const cx of ["5", "12", "19"]) {
    const dot = document.createElementNS("http://www.w3.org/2000/svg", "circle");
    dot.setAttribute("cx", cx);
    dot.setAttribute("cy", "12");
    dot.setAttribute("r", "1.5");
    svg.append(dot);
  }
  return svg;
}

function label(conversation) {
  return conversation.kind === "room" ? `#${conversation.name}` : conversation.name;
}
