"""
L{LoginDialog}: the small Tk form that asks for server, port, nickname and (optional) password
when no nickname was given. Thin: the fields are checked by L{check}; it runs on the reactor's
thread and touches no transport.
"""

from __future__ import annotations

import tkinter
from tkinter import ttk

from twisted.internet.defer import Deferred

from chat_twisted.gui.login import Login, check


class LoginDialog:
    """
    The login form, inside C{root}. C{answer} fires with the L{Login} once the user connects,
    or with None if they cancel or close the window; the form is then removed.
    """

    def __init__(self, root: tkinter.Tk, defaults: Login) -> None:
        self.root = root
        self.answer: Deferred[Login | None] = Deferred()
        root.title("chat_twisted: connect")
        self.frame = ttk.Frame(root, name="login", padding=12)
        self.frame.pack(fill="both", expand=True)
        self.fields: dict[str, ttk.Entry] = {}
        rows = [("host", "Server", defaults.host), ("port", "Port", str(defaults.port)),
                ("nick", "Nickname", defaults.nick), ("password", "Password (optional)", "")]
        for row, (name, label, value) in enumerate(rows):
            ttk.Label(self.frame, text=label).grid(row=row, column=0, sticky="w", pady=2)
            entry = ttk.Entry(self.frame, name=name, width=28, show="*" if name == "password" else "")
            entry.insert(0, value)
            entry.grid(row=row, column=1, sticky="ew", pady=2)
            entry.bind("<Return>", lambda event: self._connect())
            self.fields[name] = entry
        self.error = ttk.Label(self.frame, name="error", text="", foreground="#cf222e")
        self.error.grid(row=len(rows), column=0, columnspan=2, sticky="w")
        buttons = ttk.Frame(self.frame, name="buttons")
        buttons.grid(row=len(rows) + 1, column=0, columnspan=2, sticky="e", pady=(8, 0))
        ttk.Button(buttons, name="cancel", text="Cancel", command=lambda: self._done(None)).pack(side="right")
        ttk.Button(buttons, name="connect", text="Connect", command=self._connect).pack(side="right", padx=4)
        root.protocol("WM_DELETE_WINDOW", lambda: self._done(None))
        self.fields["nick"].focus_set()

    def _connect(self) -> None:
        result = check(*(self.fields[name].get() for name in ("host", "port", "nick", "password")))
        if isinstance(result, str):
            self.error.configure(text=result)
        else:
            self._done(result)

    def _done(self, login: Login | None) -> None:
        if not self.answer.called:
            self.frame.destroy()
            self.answer.callback(login)
