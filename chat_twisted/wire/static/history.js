// history.js — a room's history from the server: the first page asked for right behind each
// join (the join's own history may be short or off; after a lost connection it is what was
// missed), older pages for the top of the list, the gaps a lost connection or a jump left
// (filled page by page, merged by id), and jumping to a message in its room in context.

import { fold } from "./format.js";
import { gapAround, headGap } from "./gaps.js";

export const PAGE = 50; // messages per history request

export class HistoryLoader {
  /** session: the ChatSession (its state, connection, ui, and whether it is online). */
  constructor(session) {
    this.session = session;
    this.joining = new Set();     // folded rooms whose join (and first page) is on its way
    this.joinWaiters = new Map(); // folded room -> [resolve(joined)]
  }

  /** We are in `room` now (joined true), or will not be (false): wake whoever waits for it. */
  joined(room, ok = true) {
    const key = fold(room);
    const waiters = this.joinWaiters.get(key) || [];
    this.joinWaiters.delete(key);
    for (const resolve of waiters) resolve(ok);
  }

  /** The connection is gone: nothing is on its way any more. */
  reset() {
    for (const waiters of this.joinWaiters.values()) for (const resolve of waiters) resolve(false);
    this.joinWaiters.clear();
    this.joining.clear();
  }

  /** Ask for one page of a room's history and merge it; resolves with the number of new messages. */
  ask(conversation, { before = null, limit = PAGE } = {}) {
    const request = { type: "history", room: conversation.name, limit };
    if (before !== null && before !== Infinity) request.before = before;
    conversation.loading = true;
    conversation.version++;
    this.session.state.changed("conversation", conversation.key);
    return this.session.connection.ask(request, ["history"]).then((answer) => {
      conversation.loading = false;
      const proves = { before: request.before ?? null, limit };
      const added = this.session.state.addHistory(conversation, answer.messages, proves);
      this.fillGaps(conversation);
      return added;
    }, (error) => {
      conversation.loading = false;
      if (error.code !== "not_connected") conversation.historyFailed = true;
      conversation.version++;
      this.session.state.changed("conversation", conversation.key);
      if (error.code !== "not_connected" && error.code !== "not_in_room") this.session.showError(error);
      return 0;
    });
  }

  /**
   * Join a room, and ask for its latest page of history right behind the join (requests take
   * effect in order): the join's own history may be short, or off, and after a lost connection
   * this is what was said while we were away. Older history waits until this page is in.
   */
  join(room) {
    const key = fold(room);
    if (!this.session.online) return "not connected";
    this.joining.add(key);
    this.session.connection.send({ type: "join", room }, (error) => this.session.showError(error));
    this.session.connection.ask({ type: "history", room, limit: PAGE }, ["history"]).then((answer) => {
      this.joining.delete(key);
      const conversation = this.session.state.get("room", room);
      if (!conversation) return;
      this.session.state.addHistory(conversation, answer.messages, { before: null, limit: PAGE });
      this.fillGaps(conversation);
    }, () => {
      this.joining.delete(key);
      this.joined(room, false);
    });
    return null;
  }

  /** Fill the gaps left by a lost connection, page by page, without waiting to be asked. */
  fillGaps(conversation) {
    if (conversation.loading || !conversation.joined || !this.session.online) return;
    const missing = conversation.gaps.find((g) => g.auto && g.b !== Infinity);
    if (missing) this.ask(conversation, { before: missing.b });
  }

  /** Older messages, for the top of the list. */
  loadOlder(conversation) {
    if (this.joining.has(fold(conversation.name))) return; // its first page is on its way
    if (conversation.loading || !conversation.joined || !this.session.online) return;
    const head = headGap(conversation.gaps);
    if (head) this.ask(conversation, { before: head.b });
  }

  /** Messages missing between two loaded ones (after a jump). */
  loadGap(conversation, gap) {
    if (conversation.loading || !conversation.joined || !this.session.online) return;
    this.ask(conversation, { before: gap.b });
  }

  /** Show message `id` of `room` in context: join the room, load history around it, reveal it. */
  async jumpTo(roomName, id) {
    let conversation = this.session.state.get("room", roomName);
    if (!conversation || !conversation.joined) {
      if (!(await this.joinAndWait(roomName))) return;
      conversation = this.session.state.get("room", roomName);
    }
    this.session.state.activate(conversation);
    const key = `m${id}`;
    if (!conversation.byKey.has(key)) {
      const unloaded = gapAround(conversation.gaps, id);
      if (unloaded || conversation.byKey.size === 0) {
        await this.ask(conversation, { before: id + 1 });
      }
    }
    this.session.ui.reveal(conversation, key);
  }

  /** Join `room` and show it; resolves with whether we got in. */
  joinAndWait(room) {
    return new Promise((resolve) => {
      const key = fold(room);
      if (!this.joinWaiters.has(key)) this.joinWaiters.set(key, []);
      this.joinWaiters.get(key).push(resolve);
      this.session.wantActive = key;
      if (this.join(room)) resolve(false);
    });
  }
}
