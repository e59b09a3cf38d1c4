// membermenu.js — the menu of a member of the room shown (ARIA role "menu"): opened by the
// member's "Actions for NICK" button (or a right click, or the context-menu key, on the member),
// it lists what we may do to them: talk privately, ask who they are and, for an operator, op,
// voice, kick and ban. Keys: Up and Down (and Home, End) move, Enter or Space chooses, Escape
// closes and gives the focus back to the button, Tab closes. It owns the one menu element and
// which member it is open for; what each item does is given by `itemsFor`.

import { fold } from "./format.js";

export class MemberMenu {
  /** element: the empty <ul role="menu">; itemsFor(nick): [{label, run}] for that member, now. */
  constructor(element, itemsFor) {
    this.element = element;
    this.itemsFor = itemsFor;
    this.nick = null;    // the member it is open for
    this.anchor = null;  // their "Actions for" button
    this.focusIndex = 0; // the item that last had the focus
    element.addEventListener("keydown", (event) => this._key(event));
    element.addEventListener("focusin", (event) => {
      const at = this._items().indexOf(event.target);
      if (at !== -1) this.focusIndex = at;
    });
    document.addEventListener("pointerdown", (event) => {
      if (this.nick !== null && !this.element.contains(event.target) && !this.anchor?.contains(event.target)) {
        this.close(false);
      }
    });
  }

  get isOpen() {
    return this.nick !== null;
  }

  /** Open the menu of `nick` below `anchor`, or close it if it is open for them already. */
  toggle(nick, anchor) {
    if (this.nick !== null && fold(this.nick) === fold(nick) && this.anchor === anchor) {
      this.close(true);
      return;
    }
    this.open(nick, anchor);
  }

  /** Open the menu of `nick` below `anchor`, with the focus on item `focusIndex` (null: leave the focus). */
  open(nick, anchor, focusIndex = 0) {
    if (this.anchor && this.anchor !== anchor) this.anchor.setAttribute("aria-expanded", "false");
    this.nick = nick;
    this.anchor = anchor;
    this._fill();
    anchor.parentElement.append(this.element);
    this.element.hidden = false;
    this.element.setAttribute("aria-label", `Actions for ${nick}`);
    anchor.setAttribute("aria-expanded", "true");
    anchor.setAttribute("aria-controls", this.element.id);
    if (focusIndex === null) return;
    const items = this._items();
    items[Math.min(focusIndex, items.length - 1)]?.focus();
  }

  /** Close; give the focus back to the member's button when `restoreFocus`. */
  close(restoreFocus = true) {
    if (this.nick === null) return;
    const anchor = this.anchor;
    this.nick = null;
    this.anchor = null;
    this.element.hidden = true;
    this.element.replaceChildren();
    if (anchor) {
      anchor.setAttribute("aria-expanded", "false");
      if (restoreFocus && anchor.isConnected) anchor.focus();
    }
  }

  /**
   * The member list was built anew: move the open menu to the member's new button (with the
   * items as they are now, and the focus where it was), or close it if they are gone.
   */
  reattach(list) {
    if (this.nick === null) return;
    const anchor = list.querySelector(`[data-member="${CSS.escape(fold(this.nick))}"][data-part="actions"]`);
    if (!anchor) {
      this.close(false);
      return;
    }
    // The old list took the focus with it if it was in the menu: put it back on the same item.
    const lost = !document.activeElement || document.activeElement === document.body;
    this.open(this.nick, anchor, lost ? this.focusIndex : null);
  }

  _fill() {
    const nick = this.nick;
    this.element.replaceChildren(...this.itemsFor(nick).map(({ label, run }) => {
      const item = document.createElement("li");
      item.setAttribute("role", "none");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "menu-item";
      button.setAttribute("role", "menuitem");
      button.tabIndex = -1;
      button.textContent = label;
      button.addEventListener("click", () => {
        this.close(true);
        run();
      });
      item.append(button);
      return item;
    }));
  }

  _items() {
    return [...this.element.querySelectorAll("[role=menuitem]")];
  }

  _key(event) {
    const items = this._items();
    const at = items.indexOf(document.activeElement);
    let next = null;
    if (event.key === "ArrowDown") next = (at + 1) % items.length;
    else if (event.key === "ArrowUp") next = (at - 1 + items.length) % items.length;
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = items.length - 1;
    else if (event.key === "Escape") {
      event.preventDefault();
      event.stopPropagation(); // the Escape that closes the menu does not also close the drawer
      this.close(true);
      return;
    } else if (event.key === "Tab") {
      this.close(true); // and Tab goes on from the member's button
      return;
    }
    if (next !== null) {
      event.preventDefault();
      items[next]?.focus();
    }
  }
}
