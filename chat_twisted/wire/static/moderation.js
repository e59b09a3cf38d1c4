// moderation.js — the words for what operators do: a mode change, a kick, a ban, an invite, a
// claimed room, the room's modes and a list of bans, as the page shows them in a conversation.
// Pure functions, no DOM and no socket.

import { fold } from "./format.js";

/** The room modes, each with its name and what it means. */
export const ROOM_MODES = [
  { letter: "i", name: "Invite only", means: "only invited users may enter" },
  { letter: "m", name: "Moderated", means: "only operators and voiced members speak" },
  { letter: "t", name: "Topic locked", means: "only operators set the topic" },
];

const MODE_WORDS = {
  "+i": "made the room invite-only",
  "-i": "opened the room to everyone (no longer invite-only)",
  "+m": "made the room moderated: only operators and voiced members speak",
  "-m": "made the room unmoderated: everyone may speak",
  "+t": "locked the topic: only operators set it",
  "-t": "unlocked the topic: everyone may set it",
};

/**
 * A mode change ({nick, change, target}) in words, for a notice whose nick is `nick` (the one
 * who did it; null when the server did): {nick, text}. `me` is our nickname.
 */
export function modeChange(event, me) {
  const said = modeWords(event, me);
  return said.nick ? said : { nick: null, text: `The server ${said.text}` };
}

function modeWords({ nick, change, target }, me) {
  const whom = target && me && fold(target) === fold(me) ? "you" : target;
  const by = nick || null;
  switch (change) {
    case "+o":
      return by ? { nick: by, text: `made ${whom} an operator` } : { nick: target, text: "is an operator again" };
    case "-o":
      return { nick: by, text: `took operator status from ${whom}` };
    case "+v":
      return { nick: by, text: `gave ${whom} a voice` };
    case "-v":
      return { nick: by, text: `took ${whom === "you" ? "your" : `${whom}'s`} voice away` };
    case "+b":
      return { nick: by, text: `banned ${target}` };
    case "-b":
      return { nick: by, text: `lifted the ban on ${target}` };
    default:
      return { nick: by, text: MODE_WORDS[change] || `set mode ${change}${target ? ` ${target}` : ""}` };
  }
}

/** A kick ({nick, target, reason}) in words, as seen by the others in the room. */
export function kick({ target, reason }, me) {
  const whom = me && fold(target) === fold(me) ? "you" : target;
  return `kicked ${whom}${reason ? ` (${reason})` : ""}`;
}

/** "moderated, topic locked" for the letters "mt"; "no modes set" for "". */
export function modeNames(letters) {
  const names = ROOM_MODES.filter((mode) => letters.includes(mode.letter)).map((mode) => mode.name.toLowerCase());
  return names.length ? names.join(", ") : "no modes set";
}

/** "in 3 h", "in 7 d" for a time to come (seconds since the epoch). */
export function untilWords(expires, now = Date.now() / 1000) {
  if (expires === null || expires === undefined) return "until lifted";
  const seconds = Math.max(0, expires - now);
  if (seconds < 90) return `for ${Math.round(seconds)} s more`;
  if (seconds < 5400) return `for ${Math.round(seconds / 60)} min more`;
  if (seconds < 2 * 86400) return `for ${Math.round(seconds / 3600)} h more`;
  return `for ${Math.round(seconds / 86400)} days more`;
}

/** One ban as a line: "bob* (by alice, until lifted: spam)". */
export function banLine(ban) {
  const details = [`by ${ban.by}`];
  if (ban.expires !== null && ban.expires !== undefined) details.push(untilWords(ban.expires));
  return `${ban.mask} (${details.join(", ")}${ban.reason ? `: ${ban.reason}` : ""})`;
}
