// composer.js — the message field's keys: Enter sends (one line per message: Shift+Enter adds
// nothing), Tab completes a nickname of the room (or a command name) and cycles on, Up and Down
// walk back and forth through the lines sent. What a line does is someone else's job (onSend).

import { commandNames } from "./commands.js";

const KEEP = 100; // lines remembered for Up

export class Composer {
  /**
   * input: the message <input>; form: its <form>.
   * onSend(line) returns true when the line was taken (the field is then cleared).
   * nicks() gives the nicknames to complete, most likely first.
   */
  constructor(input, form, { onSend, nicks }) {
    this.input = input;
    this.onSend = onSend;
    this.nicks = nicks;
    this.sent = [];
    this.recall = -1;        // index into sent while walking it; -1: not walking
    this.draft = "";
    this.completion = null;  // {start, prefix, matches, index, suffix} while cycling
    input.addEventListener("keydown", (event) => this._key(event));
    input.addEventListener("input", () => {
      this.completion = null;
      this.recall = -1;
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
  }

  /** Send what is in the field; it stays there if it could not be sent. */
  send() {
    const line = this.input.value;
    if (!line.trim()) return;
    if (this.onSend(line)) {
      if (this.sent[this.sent.length - 1] !== line) this.sent.push(line);
      if (this.sent.length > KEEP) this.sent.shift();
      this.input.value = "";
      this.recall = -1;
      this.completion = null;
    }
  }

  _key(event) {
    if (event.isComposing) return;
    if (event.key === "Enter") {
      event.preventDefault();
      if (!event.shiftKey) this.send();
      return;
    }
    if (event.key === "Tab" && !event.ctrlKey && !event.altKey && !event.metaKey) {
      if (!event.shiftKey && this._complete()) event.preventDefault();
      return;
    }
    this.completion = null;
    if (event.key === "ArrowUp" && this._canRecall()) {
      event.preventDefault();
      this._walk(-1);
    } else if (event.key === "ArrowDown" && this.recall !== -1) {
      event.preventDefault();
      this._walk(1);
    }
  }

  _canRecall() {
    return this.sent.length > 0 && (this.input.value === "" || this.recall !== -1);
  }

  _walk(step) {
    if (this.recall === -1) {
      this.draft = this.input.value;
      this.recall = this.sent.length;
    }
    this.recall = Math.max(0, Math.min(this.sent.length, this.recall + step));
    if (this.recall === this.sent.length) {
      this.input.value = this.draft;
      this.recall = -1;
    } else {
      this.input.value = this.sent[this.recall];
    }
    const end = this.input.value.length;
    this.input.setSelectionRange(end, end);
  }

  /** Complete the word before the caret; true if the Tab was used for that. */
  _complete() {
    const input = this.input;
    let state = this.completion;
    if (!state) {
      const caret = input.selectionStart ?? input.value.length;
      const before = input.value.slice(0, caret);
      const start = before.search(/\S*$/);
      const prefix = before.slice(start);
      if (!prefix) return false;
      let matches;
      if (start === 0 && prefix.startsWith("/") && !prefix.startsWith("//")) {
        matches = commandNames(prefix.slice(1).toLowerCase()).map((name) => `/${name} `);
      } else {
        const lower = prefix.replace(/^@/, "").toLowerCase();
        matches = this.nicks().filter((nick) => nick.toLowerCase().startsWith(lower))
          .map((nick) => (start === 0 ? `${nick}: ` : `${nick} `));
      }
      if (!matches.length) return false;
      state = { start, end: caret, matches, index: -1, suffix: input.value.slice(caret) };
    }
    state.index = (state.index + 1) % state.matches.length;
    const word = state.matches[state.index];
    const head = input.value.slice(0, state.start) + word;
    input.value = head + state.suffix.replace(/^ /, "");
    input.setSelectionRange(head.length, head.length);
    this.completion = state;
    return true;
  }
}
