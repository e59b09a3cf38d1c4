// search.js — the search box and its results: sends {"type":"search"} through the session,
// shows the messages found (newest first) with the words searched for marked, and jumps to one
// in its room on a click. Says "search is not available" when the server does not know search.

import { clock, dayLabel, nickColour } from "./format.js";

const $ = (id) => document.getElementById(id);
const LIMIT = 20;

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

/** Append `text` to `parent` with each of `words` wrapped in <mark> (all as text nodes). */
export function appendMarked(parent, text, words) {
  const wanted = words.filter(Boolean).map((w) => w.toLowerCase());
  if (!wanted.length) {
    parent.append(text);
    return;
  }
  const lower = text.toLowerCase();
  let at = 0;
  while (at < text.length) {
    let best = -1;
    let length = 0;
    for (const word of wanted) {
      const found = lower.indexOf(word, at);
      if (found !== -1 && (best === -1 || found < best)) {
        best = found;
        length = word.length;
      }
    }
    if (best === -1) break;
    if (best > at) parent.append(text.slice(at, best));
    parent.append(element("mark", null, text.slice(best, best + length)));
    at = best + length;
  }
  if (at < text.length) parent.append(text.slice(at));
}

export class SearchPanel {
  /** session: ChatSession (search(), history.jumpTo()); narrow: a MediaQueryList for phone widths. */
  constructor(session, narrow) {
    this.session = session;
    this.narrow = narrow;
    this.panel = $("search-panel");
    this.input = $("search-input");
    this.results = $("search-results");
    this.status = $("search-status");
    this.asked = 0;
    $("search-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.search(this.input.value);
    });
    $("search-close").addEventListener("click", () => this.close());
    this.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
    this.input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") this.close();
    });
  }

  open() {
    this.panel.hidden = false;
    document.body.classList.add("searching");
  }

  close() {
    this.panel.hidden = true;
    document.body.classList.remove("searching");
    this.input.focus();
  }

  async search(text, before = null) {
    text = text.trim();
    if (!text) return;
    this.input.value = text;
    this.open();
    const asked = ++this.asked;
    if (before === null) {
      this.results.replaceChildren();
      this.found = [];
    }
    this.status.textContent = `Searching for “${text}”…`;
    let answer;
    try {
      answer = await this.session.search(text, LIMIT, before);
    } catch (error) {
      if (asked !== this.asked) return;
      this.status.textContent = error.code === "bad_request" || error.code === "search_unavailable"
        ? "search is not available" : error.message || "search failed";
      return;
    }
    if (asked !== this.asked) return;
    this.show(answer, before !== null);
  }

  /** Show the messages found, newest first (`more`: after the ones shown, for older results). */
  show(answer, more = false) {
    const messages = [...(answer.messages || [])].sort((x, y) => y.id - x.id);
    this.found = more ? [...this.found, ...messages] : messages;
    const count = this.found.length;
    this.status.textContent = count
      ? `${count} message${count === 1 ? "" : "s"} found for “${answer.text}”`
      : `Nothing found for “${answer.text}”`;
    const words = String(answer.text).split(/\s+/).map((w) => w.replace(/^["'(]+|["'),.!?:;]+$/g, ""));
    const items = messages.map((message) => this._item(message, words));
    this.results.querySelector(".more")?.remove();
    if (more) this.results.append(...items);
    else this.results.replaceChildren(...items);
    if (messages.length >= LIMIT) {
      const item = element("li", "more");
      const button = element("button", "link-button", "Older results");
      button.type = "button";
      button.addEventListener("click", () => this.search(answer.text, messages[messages.length - 1].id));
      item.append(button);
      this.results.append(item);
    }
  }

  _item(message, words) {
    const item = element("li");
    const button = element("button", "result");
    button.type = "button";
    const head = element("span", "result-head");
    head.append(element("span", "result-room", `#${message.room}`), " ",
      element("span", `nick ${nickColour(message.nick)}`, message.nick), " ",
      element("span", "result-time", `${dayLabel(message.time)} ${clock(message.time)}`));
    const body = element("span", "result-text");
    if (message.kind === "action") body.append(`* ${message.nick} `);
    appendMarked(body, message.text, words);
    button.append(head, body);
    button.addEventListener("click", () => {
      if (this.narrow.matches) this.close();
      this.session.history.jumpTo(message.room, message.id);
    });
    item.append(button);
    return item;
  }
}
