// connection.js — owns the WebSocket: opening it at this page's origin, JSON in and out,
// request ids (answers and errors come back with the id they were asked with), a keepalive
// ping, and reconnecting with growing, jittered delays. It knows nothing about chat rules.

const MAX_DELAY = 30;           // seconds between attempts, at most
const PING_EVERY = 30_000;      // ms of silence before we ping the server
const PING_TIMEOUT = 10_000;    // ms to wait for the pong before giving up on the socket

/** The WebSocket address of the page's own server. */
export function socketUrl(loc = location) {
  return (loc.protocol === "https:" ? "wss://" : "ws://") + loc.host + "/ws";
}

/** The delay before reconnect attempt `attempt` (0, 1, 2...): 1, 2, 4 ... 30 s, with jitter. */
export function retryDelay(attempt, random = Math.random) {
  const base = Math.min(MAX_DELAY, 2 ** attempt);
  return Math.max(1, Math.min(MAX_DELAY, Math.round(base * (0.8 + 0.4 * random()))));
}

export class Connection {
  /**
   * handlers: onOpen(), onEvent(event), onClose({willRetry}), onStatus({state, seconds}).
   * state is "connecting", "connected" or "disconnected" (seconds: until the next attempt).
   */
  constructor(handlers, url = socketUrl()) {
    this.handlers = handlers;
    this.url = url;
    this.socket = null;
    this.nextId = 1;
    this.pending = new Map();   // id -> {resolve, reject, answers: Set(type)}
    this.onErrorFor = new Map(); // id -> callback(error) for requests that expect no answer
    this.attempt = 0;
    this.retryTimer = null;
    this.countdown = null;
    this.pingTimer = null;
    this.pongTimer = null;
    this.wanted = false;        // whether we want to be connected (false after quit/logout)
  }

  get open() {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  /** Connect, and keep reconnecting until stop(). */
  start() {
    this.wanted = true;
    this.attempt = 0;
    this._connect();
  }

  /** Stop reconnecting and close the socket. */
  stop() {
    this.wanted = false;
    this._clearTimers();
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000);
      this._failPending("closed");
    }
    this.handlers.onStatus({ state: "stopped" });
  }

  /** Try again now (the user asked, or the browser came back online). */
  retryNow() {
    if (!this.wanted || this.open || (this.socket && this.socket.readyState === WebSocket.CONNECTING)) return;
    this._clearTimers();
    this._connect();
  }

  /** Send a request that expects no answer; onError(error) gets the error it may cause. */
  send(request, onError = null) {
    if (!this.open) return false;
    const id = this.nextId++;
    if (onError) this.onErrorFor.set(id, onError);
    this.socket.send(JSON.stringify({ ...request, id }));
    return true;
  }

  /** Send a question; the Promise fires with the answer (an event of one of `answers`) or the error. */
  ask(request, answers) {
    if (!this.open) return Promise.reject({ type: "error", code: "not_connected", message: "not connected" });
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, answers: new Set(answers) });
      this.socket.send(JSON.stringify({ ...request, id }));
    });
  }

  // --- internals -------------------------------------------------------------------------

  _connect() {
    this.handlers.onStatus({ state: "connecting" });
    let socket;
    try {
      socket = new WebSocket(this.url);
    } catch (error) {
      this._scheduleRetry();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (socket !== this.socket) return;
      this.attempt = 0;
      this._armPing();
      this.handlers.onStatus({ state: "connected" });
      this.handlers.onOpen();
    };
    socket.onmessage = (message) => {
      if (socket !== this.socket) return;
      clearTimeout(this.pongTimer);
      this._armPing();
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        return;
      }
      if (event && typeof event === "object") this._dispatch(event);
    };
    socket.onclose = (close) => this._lost(socket, close.code);
    socket.onerror = () => { /* onclose follows */ };
  }

  /** The socket closed, or stopped answering: forget it, fail what waits, and retry if wanted. */
  _lost(socket, code) {
    if (socket !== this.socket) return;
    this.socket = null;
    this._clearTimers();
    this._failPending("connection lost");
    const willRetry = this.wanted;
    this.handlers.onClose({ willRetry, code });
    if (willRetry) this._scheduleRetry();
  }

  _dispatch(event) {
    const id = event.id;
    if (id !== undefined && id !== null) {
      const waiting = this.pending.get(id);
      if (waiting && event.type === "error") {
        this.pending.delete(id);
        waiting.reject(event);
        return;
      }
      if (waiting && waiting.answers.has(event.type)) {
        this.pending.delete(id);
        waiting.resolve(event);
        return;
      }
      const onError = this.onErrorFor.get(id);
      if (onError && event.type === "error") {
        this.onErrorFor.delete(id);
        onError(event);
        return;
      }
      if (event.type === "pong") return;
    }
    // Ids of requests that got no error are not remembered forever.
    if (this.onErrorFor.size > 200) {
      const oldest = [...this.onErrorFor.keys()].slice(0, 100);
      for (const key of oldest) this.onErrorFor.delete(key);
    }
    this.handlers.onEvent(event);
  }

  _failPending(why) {
    for (const waiting of this.pending.values()) {
      waiting.reject({ type: "error", code: "not_connected", message: why });
    }
    this.pending.clear();
    this.onErrorFor.clear();
  }

  _scheduleRetry() {
    const seconds = retryDelay(this.attempt++);
    let left = seconds;
    this.handlers.onStatus({ state: "disconnected", seconds: left });
    this.countdown = setInterval(() => {
      left -= 1;
      if (left > 0) this.handlers.onStatus({ state: "disconnected", seconds: left });
    }, 1000);
    this.retryTimer = setTimeout(() => {
      this._clearTimers();
      this._connect();
    }, seconds * 1000);
  }

  _armPing() {
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (!this.open) return;
      const id = this.nextId++;
      this.socket.send(JSON.stringify({ type: "ping", id }));
      const socket = this.socket;
      this.pongTimer = setTimeout(() => {
        socket.close(4000, "no pong");
        this._lost(socket, 4000);
      }, PING_TIMEOUT);
    }, PING_EVERY);
  }

  _clearTimers() {
    clearTimeout(this.retryTimer);
    clearInterval(this.countdown);
    clearTimeout(this.pingTimer);
    clearTimeout(this.pongTimer);
    this.retryTimer = this.countdown = this.pingTimer = this.pongTimer = null;
  }
}
