// gaps.js — what part of a room's history the page has, as a list of gaps: open intervals of
// message ids (a, b) that may hold messages not loaded yet (a may be -Infinity: older history;
// b may be Infinity: newer than anything seen, after a lost connection). Pure functions, no DOM.

/** A gap: messages with a < id < b may be missing. `auto`: fill it without waiting to be seen. */
export function gap(a, b, auto = false) {
  return { a, b, auto };
}

function nonEmpty(a, b) {
  return b - a > 1; // ids are whole numbers; NaN (from -Inf - -Inf) is not > 1
}

/**
 * What one history page proves: every message of the room with lo <= id < hi is in it.
 * A page asked with `before` covers up to `before`; one without covers up to now (Infinity);
 * a page shorter than asked (`limit`) reaches the room's first message (lo = -Infinity).
 */
export function coverage(messages, { before = null, limit = null } = {}) {
  const hi = before === null || before === undefined ? Infinity : before;
  if (messages.length === 0) return { lo: -Infinity, hi };
  const first = Math.min(...messages.map((m) => m.id));
  const short = limit !== null && limit !== undefined && messages.length < limit;
  return { lo: short ? -Infinity : first, hi };
}

/** The gaps left once the ids lo <= id < hi are known. */
export function cover(gaps, { lo, hi }) {
  const result = [];
  for (const g of gaps) {
    const below = Math.min(g.b, lo);
    if (nonEmpty(g.a, below)) result.push(gap(g.a, below, g.auto));
    const above = Math.max(g.a, hi - 1);
    if (nonEmpty(above, g.b)) result.push(gap(above, g.b, g.auto));
  }
  return result;
}

/** A live message `id` arrived: the open end of a gap after a lost connection now ends there. */
export function liveArrived(gaps, id) {
  return gaps.map((g) => (g.b === Infinity && g.a < id ? gap(g.a, id, g.auto) : g));
}

/** The connection was lost: anything after `newest` (the newest id loaded) may be missed. */
export function connectionLost(gaps, newest) {
  const a = newest === null || newest === undefined ? -Infinity : newest;
  const open = gaps.filter((g) => g.b === Infinity);
  if (open.length) return gaps.map((g) => (g.b === Infinity ? gap(g.a, Infinity, true) : g));
  return [...gaps, gap(a, Infinity, true)];
}

/** The gap holding id, or null. */
export function gapAround(gaps, id) {
  return gaps.find((g) => g.a < id && id < g.b) || null;
}

/** The gap before the oldest message (older history not loaded yet), or null when it all is. */
export function headGap(gaps) {
  return gaps.find((g) => g.a === -Infinity) || null;
}
