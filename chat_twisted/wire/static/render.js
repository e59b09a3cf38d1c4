// render.js — builds the DOM of one message-list item: a message, an action, a quiet notice, a
// day separator, a gap in history, the top of the list. Every text a user typed goes in as a
// text node (or a safe link, via linkify.js): nothing here parses markup.

import { appendLinkified } from "./linkify.js";
import { clock, dayLabel, fullTime, nickColour } from "./format.js";

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function timeNode(seconds) {
  const node = element("time", "ts", clock(seconds));
  node.dateTime = new Date(seconds * 1000).toISOString();
  node.title = fullTime(seconds);
  return node;
}

function nickNode(nick) {
  return element("span", `nick ${nickColour(nick)}`, nick);
}

const EVENT_MARKS = {
  join: "→", part: "←", quit: "⇠", nick: "↔", away: "·", topic: "✎", info: "ℹ", error: "!",
  mode: "±", ban: "⊘", kick: "⇤", claim: "⚑", wall: "!",
};

/** One entry of a conversation (a message, an action, a topic change, a notice). */
export function entryNode(entry) {
  const node = element("div", "line");
  node.dataset.key = entry.key;
  if (entry.kind === "say" || entry.kind === "notice" || entry.kind === "action") {
    node.classList.add("msg", `kind-${entry.kind}`);
    if (entry.own) node.classList.add("own");
    if (entry.mention) node.classList.add("mention");
    node.append(timeNode(entry.time));
    const body = element("span", "body");
    if (entry.kind === "action") {
      node.append(element("span", "nick-col action-mark", "*"));
      body.append(nickNode(entry.nick), " ");
    } else {
      const column = element("span", "nick-col");
      column.append(nickNode(entry.nick));
      column.append(element("span", "colon", ":"));
      node.append(column);
    }
    appendLinkified(body, entry.text);
    if (entry.stored) body.append(element("span", "tag", "sent while you were away"));
    if (entry.mention) body.prepend(element("span", "visually-hidden", "mentions you: "));
    node.append(body);
    return node;
  }
  node.classList.add("notice", `kind-${entry.kind}`);
  node.append(timeNode(entry.time));
  const mark = entry.kind === "topic" ? "topic" : entry.extra?.mark || entry.kind;
  node.append(element("span", "nick-col mark", EVENT_MARKS[mark] || "·"));
  const body = element("span", "body");
  if (entry.kind === "topic") {
    body.append(nickNode(entry.nick), entry.text ? " set the topic: " : " cleared the topic");
    const topic = element("span", "topic-text");
    appendLinkified(topic, entry.text);
    body.append(topic);
  } else {
    if (entry.nick) body.append(nickNode(entry.nick), " ");
    appendLinkified(body, entry.text);
  }
  node.append(body);
  return node;
}

/** The separator before a day's first message. */
export function dayNode(seconds) {
  const node = element("div", "day");
  node.setAttribute("role", "separator");
  const label = element("span", "day-label", dayLabel(seconds));
  node.append(label);
  return node;
}

/** The divider above the first message not seen yet. */
export function unreadNode() {
  const node = element("div", "unread-divider");
  node.setAttribute("role", "separator");
  node.append(element("span", "day-label", "New messages"));
  return node;
}

/** A place where messages are not loaded yet, with a button that loads them. */
export function gapNode(onLoad) {
  const node = element("div", "gap");
  const button = element("button", "link-button", "Load missing messages");
  button.type = "button";
  button.addEventListener("click", onLoad);
  node.append(button);
  return node;
}

/** The top of the list: loading older history, or the start of the conversation. */
export function headNode() {
  const node = element("div", "head");
  return node;
}

export function setHead(node, conversation) {
  if (conversation.kind === "private") {
    node.textContent = `This is your private conversation with ${conversation.name}. It is not kept after you leave.`;
  } else if (conversation.hasOlder()) {
    node.textContent = conversation.loading ? "Loading older messages…" : "Scroll up for older messages";
  } else {
    node.textContent = `This is the beginning of #${conversation.name}.`;
  }
}
