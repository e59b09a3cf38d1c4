// roompanel.js — the "Room settings" dialog of the room shown: its modes (invite only, moderated,
// topic locked) as check boxes an operator can change, who claimed it (and a button to claim it),
// a field to invite a user, and its bans, each with a button to lift it, and a field to ban a
// mask. It asks the server for the modes and bans when it opens and follows the changes that
// come while it is open (through the state). What the server refuses is said in the dialog.

import { banLine, ROOM_MODES } from "./moderation.js";

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

export class RoomPanel {
  /** state: the ChatState; session: the ChatSession (send, connection). */
  constructor(state, session) {
    this.state = state;
    this.session = session;
    this.dialog = $("room-dialog");
    this.room = null; // the conversation it shows
    this.boxes = new Map(); // mode letter -> its check box
    const fieldset = $("mode-fieldset");
    for (const mode of ROOM_MODES) {
      const label = element("label", "check");
      const box = element("input");
      box.type = "checkbox";
      box.id = `mode-${mode.letter}`;
      box.addEventListener("change", () => this._send({ type: "mode", changes: `${box.checked ? "+" : "-"}${mode.letter}` }));
      label.append(box, element("span", "check-name", mode.name), element("span", "check-means", ` — ${mode.means}`));
      fieldset.append(label);
      this.boxes.set(mode.letter, box);
    }
    $("room-dialog-close").addEventListener("click", () => this.dialog.close());
    this.dialog.addEventListener("close", () => { this.room = null; });
    $("claim-button").addEventListener("click", () => this._send({ type: "claim" }, "Claiming the room…"));
    $("invite-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const nick = $("invite-nick").value.trim();
      if (!nick) return;
      if (this._send({ type: "invite", nick }, `Invited ${nick}.`)) $("invite-nick").value = "";
    });
    $("ban-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const mask = $("ban-mask").value.trim();
      if (!mask) return;
      if (this._send({ type: "ban", mask })) $("ban-mask").value = "";
    });
    state.onChange(({ what, key }) => {
      if (!this.room) return;
      if (what === "list" && !state.conversations.has(this.room.key)) this.dialog.close(); // we left it
      else if ((what === "modes" || what === "members" || what === "list") && key === this.room.key) this.render();
      else if (what === "list") this.render(); // we may have become a server operator
    });
  }

  /** Show the settings of `room` and ask the server for its modes and bans. */
  open(room) {
    this.room = room;
    this._status("");
    this.render();
    this.dialog.showModal();
    for (const [type, answer, take] of [["mode", "modes", "on_modes"], ["bans", "bans", "on_bans"]]) {
      this.session.connection.ask({ type, room: room.name }, [answer])
        .then((event) => this.session[take](event), (error) => this._status(error.message, true));
    }
  }

  render() {
    const room = this.room;
    if (!room) return;
    const operator = this.state.isOperator(room);
    $("room-dialog-title").textContent = `#${room.name} settings`;
    for (const [letter, box] of this.boxes) {
      box.checked = room.modes !== null && room.modes.includes(letter);
      box.disabled = !operator || room.modes === null;
    }
    $("modes-hint").textContent = operator ? "" : "Only the room's operators change these.";
    $("room-owner").textContent = room.owner
      ? `Claimed by the account ${room.owner}: it keeps its operators, bans and modes.`
      : `Not claimed: its operators, bans and modes are forgotten when everyone has left.${
        operator && !this.state.account ? " Register your nickname (/register PASSWORD) to claim it." : ""}`;
    $("claim-button").hidden = !operator || Boolean(room.owner) || !this.state.account;
    $("ban-form").hidden = !operator;
    const list = $("ban-list");
    const bans = room.bans || [];
    list.replaceChildren(...bans.map((ban) => {
      const item = element("li", "ban");
      item.append(element("span", "ban-text", banLine(ban)));
      if (operator) {
        const lift = element("button", "link-button", "Lift");
        lift.type = "button";
        lift.setAttribute("aria-label", `Lift the ban on ${ban.mask}`);
        lift.addEventListener("click", () => this._send({ type: "unban", mask: ban.mask }));
        item.append(lift);
      }
      return item;
    }));
    $("bans-empty").textContent = room.bans === null ? "Loading…" : bans.length ? "" : "Nobody is banned.";
  }

  /** Send a request about the room; its error is shown here. Returns whether it was sent. */
  _send(request, done = "") {
    const room = this.room;
    if (!room) return false;
    const problem = this.session.send({ ...request, room: room.name }, (error) => {
      this._status(error.message || error.code, true);
      this.render(); // a check box goes back to what is true
    });
    if (problem) {
      this._status(problem, true);
      this.render();
      return false;
    }
    this._status(done);
    return true;
  }

  _status(text, error = false) {
    const status = $("room-dialog-status");
    status.textContent = text;
    status.classList.toggle("error", error);
  }
}
