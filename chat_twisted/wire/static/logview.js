// logview.js — one conversation's message list on screen (role "log"): keeps its DOM in step
// with the conversation's entries with as few DOM changes as possible, adds day separators, the
// "new messages" divider and gap markers, keeps the scroll position anchored when older messages
// are put above, sticks to the bottom while the reader is there, and asks for older history when
// the reader reaches the top.

import { dayKey } from "./format.js";
import { dayNode, entryNode, gapNode, headNode, setHead, unreadNode } from "./render.js";

const NEAR_TOP = 300;     // px from the top at which older history is asked for
const AT_BOTTOM = 40;     // px from the bottom that still counts as "at the bottom"

export class LogView {
  /** handlers: onNeedOlder(conversation), onNeedGap(conversation, gap). */
  constructor(conversation, handlers) {
    this.conversation = conversation;
    this.handlers = handlers;
    this.element = document.createElement("div");
    this.element.className = "log";
    this.element.setAttribute("role", "log");
    this.element.setAttribute("aria-label", "Chat log");
    this.element.tabIndex = 0;
    this.element.hidden = true;
    this.nodes = new Map();      // entry key -> node
    this.days = new Map();       // day key#n -> node
    this.gaps = new Map();       // gap's lower id -> node
    this.head = headNode();
    this.unread = unreadNode();
    this.pinned = true;          // the reader is at the bottom
    this.rendered = -1;          // the conversation version on screen
    this.element.addEventListener("scroll", () => this._scrolled(), { passive: true });
    this.observer = new IntersectionObserver((seen) => this._gapsSeen(seen), { root: this.element });
    // A narrower window wraps lines anew: whoever was at the bottom stays there.
    new ResizeObserver(() => {
      if (this.pinned && this.visible) this.scrollToBottom();
    }).observe(this.element);
  }

  get visible() {
    return !this.element.hidden;
  }

  show() {
    this.element.hidden = false;
    this.update(true);
    if (this.pinned) this.scrollToBottom();
    this._maybeNeedOlder();
  }

  hide() {
    this.element.hidden = true;
  }

  scrollToBottom() {
    this.element.scrollTop = this.element.scrollHeight;
  }

  /** Bring the DOM up to date with the conversation. */
  update(force = false) {
    const conversation = this.conversation;
    setHead(this.head, conversation);
    if (!force && this.rendered === conversation.version) return;
    this.rendered = conversation.version;
    const desired = this._desired();
    if (!this.visible) {
      this._apply(desired);
      return;
    }
    const list = this.element;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < AT_BOTTOM;
    let anchor = null;
    let anchorOffset = 0;
    if (!atBottom) {
      for (const child of list.children) {
        // Anchor on a message (separators and markers move when history is put above).
        if (child.dataset.key && child.offsetTop + child.offsetHeight > list.scrollTop) {
          anchor = child;
          anchorOffset = child.offsetTop - list.scrollTop;
          break;
        }
      }
    }
    this._apply(desired);
    if (atBottom) {
      this.scrollToBottom();
    } else if (anchor && anchor.isConnected) {
      list.scrollTop = anchor.offsetTop - anchorOffset;
    }
    this._maybeNeedOlder();
    this._maybeFillGap();
  }

  /** The node of an entry, for jumping to it. */
  nodeOf(key) {
    return this.nodes.get(key) || null;
  }

  /** Scroll an entry into the middle of the list and make it stand out for a moment. */
  reveal(key) {
    const node = this.nodeOf(key);
    if (!node) return false;
    this.pinned = false;
    node.scrollIntoView({ block: "center" });
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
    setTimeout(() => node.classList.remove("flash"), 2600);
    return true;
  }

  // --- internals ---------------------------------------------------------------------------

  _desired() {
    const conversation = this.conversation;
    const result = [this.head];
    const middleGaps = conversation.gaps.filter((g) => g.a !== -Infinity && g.b !== Infinity)
      .sort((x, y) => x.a - y.a);
    let gapIndex = 0;
    let previousDay = null;
    const dayCount = new Map();
    const seenKeys = new Set();
    for (const entry of conversation.entries) {
      while (gapIndex < middleGaps.length && entry.major > middleGaps[gapIndex].a) {
        result.push(this._gapNode(middleGaps[gapIndex++]));
      }
      const day = dayKey(entry.time);
      if (day !== previousDay) {
        const n = (dayCount.get(day) || 0) + 1;
        dayCount.set(day, n);
        const key = `${day}#${n}`;
        if (!this.days.has(key)) this.days.set(key, dayNode(entry.time));
        result.push(this.days.get(key));
        previousDay = day;
      }
      if (entry.key === conversation.unreadFrom) result.push(this.unread);
      let node = this.nodes.get(entry.key);
      if (!node) {
        node = entryNode(entry);
        this.nodes.set(entry.key, node);
      }
      seenKeys.add(entry.key);
      result.push(node);
    }
    while (gapIndex < middleGaps.length) result.push(this._gapNode(middleGaps[gapIndex++]));
    if (this.nodes.size > seenKeys.size) {
      for (const key of [...this.nodes.keys()]) if (!seenKeys.has(key)) this.nodes.delete(key);
    }
    return result;
  }

  _gapNode(gap) {
    let node = this.gaps.get(gap.a);
    if (!node) {
      node = gapNode(() => this.handlers.onNeedGap(this.conversation, node.gap));
      this.gaps.set(gap.a, node);
      this.observer.observe(node);
    }
    node.gap = gap;
    node.querySelector("button").textContent = gap.auto || this.conversation.loading
      ? "Loading missed messages…" : "Load missing messages";
    return node;
  }

  /** Make the list's children exactly `desired`, moving and inserting only what differs. */
  _apply(desired) {
    const list = this.element;
    const wanted = new Set(desired);
    for (const child of [...list.children]) {
      if (wanted.has(child)) continue;
      if (child.gap && this.gaps.get(child.gap.a) === child) {
        this.observer.unobserve(child);
        this.gaps.delete(child.gap.a);
      }
      child.remove();
    }
    let cursor = list.firstChild;
    for (const node of desired) {
      if (cursor === node) {
        cursor = cursor.nextSibling;
      } else {
        list.insertBefore(node, cursor);
      }
    }
  }

  _scrolled() {
    const list = this.element;
    this.pinned = list.scrollHeight - list.scrollTop - list.clientHeight < AT_BOTTOM;
    if (list.scrollTop < NEAR_TOP) this._maybeNeedOlder(true);
    this._maybeFillGap();
  }

  /** A gap marker still in sight after its messages came in: go on filling it. */
  _maybeFillGap() {
    if (!this.visible || this.conversation.loading || this.gaps.size === 0) return;
    const view = this.element.getBoundingClientRect();
    for (const node of this.gaps.values()) {
      const box = node.getBoundingClientRect();
      if (node.isConnected && box.bottom > view.top && box.top < view.bottom) {
        this.handlers.onNeedGap(this.conversation, node.gap);
        return;
      }
    }
  }

  /** Ask for older history when the top is in sight (or the list does not fill the screen). */
  _maybeNeedOlder(nearTop = false) {
    const conversation = this.conversation;
    if (!this.visible || conversation.loading || !conversation.hasOlder() || conversation.historyFailed) return;
    const list = this.element;
    if (nearTop || list.scrollTop < NEAR_TOP || list.scrollHeight <= list.clientHeight + NEAR_TOP) {
      this.handlers.onNeedOlder(conversation);
    }
  }

  _gapsSeen(seen) {
    for (const item of seen) {
      if (item.isIntersecting && item.target.gap && !this.conversation.loading) {
        this.handlers.onNeedGap(this.conversation, item.target.gap);
      }
    }
  }
}
