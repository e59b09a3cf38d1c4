// format.js — how times, days and nicknames look: local times and day names in the reader's
// locale and time zone (from the protocol's seconds since the epoch), a stable colour class per
// nick, and whether a text mentions a nick. Pure functions, no DOM.

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "medium" });
const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });

/** "14:05" in the reader's locale. */
export function clock(seconds) {
  return timeFormat.format(new Date(seconds * 1000));
}

/** The full local date and time, for a tooltip. */
export function fullTime(seconds) {
  return fullFormat.format(new Date(seconds * 1000));
}

/** A key naming the local day of a time: "2026-12-01". */
export function dayKey(seconds) {
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

/** "Today", "Yesterday" or the long local date. */
export function dayLabel(seconds, now = Date.now() / 1000) {
  const key = dayKey(seconds);
  if (key === dayKey(now)) return "Today";
  if (key === dayKey(now - 86400)) return "Yesterday";
  return dayFormat.format(new Date(seconds * 1000));
}

export const NICK_COLOURS = 12;

/** The colour class of a nick: the same nick always gets the same one (FNV-1a hash). */
export function nickColour(nick) {
  let hash = 0x811c9dc5;
  for (const char of nick.toLowerCase()) hash = Math.imul(hash ^ char.codePointAt(0), 0x01000193) >>> 0;
  return `nc${hash % NICK_COLOURS}`;
}

const NICK_CHARS = "A-Za-z0-9_\\-\\[\\]\\\\^{}|";

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
}

/** Whether `text` names `nick` as a word of its own, in any case. */
export function mentions(text, nick) {
  if (!nick) return false;
  const pattern = new RegExp(`(?<![${NICK_CHARS}])${escapeRegExp(nick)}(?![${NICK_CHARS}])`, "i");
  return pattern.test(text);
}

/** Names compared as the server does: without regard to case. */
export function fold(name) {
  return name.toLowerCase();
}
