// notify.js — browser notifications: asks for permission only when the user clicks the
// "Notifications" button (never on load), remembers whether they are on, and shows one for a
// mention or a private message while the page is hidden. Clicking one brings the chat back.

const supported = typeof window !== "undefined" && "Notification" in window;

export class Notifier {
  /** button: the "Notifications" toggle; onOpen(key): show that conversation. */
  constructor(button, onOpen) {
    this.button = button;
    this.onOpen = onOpen;
    this.enabled = supported && Notification.permission === "granted" &&
      localStorage.getItem("chat_twisted.notify") !== "off";
    button.addEventListener("click", () => this.toggle());
    this._show();
  }

  async toggle() {
    if (!supported) {
      this.button.title = "This browser cannot show notifications";
      return;
    }
    if (this.enabled) {
      this.enabled = false;
    } else {
      const permission = Notification.permission === "default"
        ? await Notification.requestPermission() : Notification.permission;
      this.enabled = permission === "granted";
    }
    localStorage.setItem("chat_twisted.notify", this.enabled ? "on" : "off");
    this._show();
  }

  _show() {
    this.button.setAttribute("aria-pressed", String(this.enabled));
    const denied = supported && Notification.permission === "denied";
    this.button.title = !supported ? "This browser cannot show notifications"
      : denied ? "Notifications are blocked for this site in the browser's settings"
        : this.enabled ? "Notifications on (click to turn off)" : "Notifications off (click to turn on)";
  }

  /** Notify about a message, if notifications are on and the page is hidden. */
  notify(title, body, key) {
    if (!this.enabled || !document.hidden) return;
    try {
      const notification = new Notification(title, { body: body.slice(0, 200), tag: key, icon: "/static/icon.svg" });
      notification.onclick = () => {
        window.focus();
        this.onOpen(key);
        notification.close();
      };
    } catch {
      // Some browsers allow notifications only from a service worker: nothing to do then.
    }
  }
}
