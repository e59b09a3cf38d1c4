"""
L{ChatWindow}: the thin Tk view of the desktop window. It lays out the widgets, shows what
L{WindowPresenter} tells it (see L{WindowView}) and hands every key and click to the presenter.
It decides nothing about the chat and never touches a transport; it runs on the reactor's
thread only (the reactor drives Tk, see C{chat_twisted.gui.app}).

Widget names are fixed (C{.top.room}, C{.body.tabs}, C{.input}, C{.status}...), so that a test
can find them through Tk's C{send}.
"""

from __future__ import annotations

import tkinter
from collections.abc import Sequence
from tkinter import font as tkfont
from tkinter import ttk

from chat_twisted.client.styles import Style
from chat_twisted.gui.model import ROOM_TAB, Shown, WindowPresenter

#: The Tk application name (for Tk's C{send}; Tk adds " #2" and so on if it is taken).
APP_NAME = "chat_twisted"

#: The text colour (and weight) of each kind of line, as in the terminal client.
COLOURS: dict[Style, tuple[str, str]] = {
    Style.OWN: ("#1a7f37", "normal"),  # green
    Style.OTHER: ("#1f2328", "normal"),  # the window's own colour
    Style.PRIVATE: ("#a0139e", "bold"),  # magenta
    Style.SYSTEM: ("#0e7490", "normal"),  # cyan
    Style.ERROR: ("#cf222e", "bold"),  # red
    Style.HISTORY: ("#1f4fbf", "normal"),  # blue
    Style.CLIENT: ("#9a6700", "normal"),  # yellow, darkened to be read on white
}
_STAMP_COLOUR = "#6e7781"


class _Tab:
    """One tab of the notebook: a read-only, word-wrapped text with its scroll bar."""

    def __init__(self, notebook: ttk.Notebook, name: str, font: tkfont.Font) -> None:
        self.frame = ttk.Frame(notebook, name=name)
        self.text = tkinter.Text(self.frame, name="text", wrap="word", state="disabled", font=font,
                                 width=70, height=20, padx=6, pady=4, borderwidth=0, highlightthickness=0)
        scroll = ttk.Scrollbar(self.frame, orient="vertical", command=self.text.yview, name="scroll")
        self.text.configure(yscrollcommand=scroll.set)
        self.text.pack(side="left", fill="both", expand=True)
        scroll.pack(side="right", fill="y")
        # Wrapped rows line up after the time stamp, or after the "* " of a system line.
        self.text.tag_configure("stamped", lmargin2=font.measure("[00:00:00] "), spacing1=1)
        self.text.tag_configure("unstamped", lmargin2=font.measure("* "), spacing1=1)
        self.text.tag_configure("stamp", foreground=_STAMP_COLOUR)
        for style, (colour, weight) in COLOURS.items():
            self.text.tag_configure(style.name, foreground=colour,
                                    font=tkfont.Font(font=font, weight=weight))  # type: ignore[arg-type]

    def add(self, shown: Shown) -> None:
        """Add one line; keep showing the newest unless the user scrolled up to read."""
        at_end = self.text.yview()[1] >= 0.999
        self.text.configure(state="normal")
        if self.text.index("end-1c") != "1.0":
            self.text.insert("end", "\n")
        layout = "stamped" if shown.stamp else "unstamped"
        if shown.stamp:
            self.text.insert("end", shown.stamp, (layout, "stamp"))
        self.text.insert("end", shown.text, (layout, shown.style.name))
        self.text.configure(state="disabled")
        if at_end:
            self.text.see("end")

    def clear(self) -> None:
        """Remove every line."""
        self.text.configure(state="normal")
        self.text.delete("1.0", "end")
        self.text.configure(state="disabled")


class ChatWindow:
    """
    The window's widgets: room name and topic with a join field at the top, the tabs of messages
    (the room, then one per private conversation) beside the room's members, the input line and
    the status line at the bottom. Owns the widgets only; L{attach} gives it its presenter.
    """

    def __init__(self, root: tkinter.Tk) -> None:
        self.root = root
        self.presenter: WindowPresenter | None = None
        root.title("chat_twisted")
        root.minsize(520, 320)
        self.font = tkfont.nametofont("TkFixedFont")
        self.bold = tkfont.Font(font=self.font, weight="bold")  # type: ignore[arg-type]

        top = ttk.Frame(root, name="top", padding=(6, 6, 6, 2))
        top.pack(side="top", fill="x")
        self.room = ttk.Label(top, name="room", text="(no room)", font=self.bold)
        self.room.pack(side="left")
        self.topic = ttk.Label(top, name="topic", text="", foreground=_STAMP_COLOUR)
        self.topic.pack(side="left", padx=(10, 0), fill="x", expand=True)
        self.join_button = ttk.Button(top, name="join", text="Join", width=6, command=self._join)
        self.join_button.pack(side="right")
        self.join_entry = ttk.Entry(top, name="room_entry", width=16)
        self.join_entry.pack(side="right", padx=(4, 2))
        self.join_entry.bind("<Return>", lambda event: self._join())
        ttk.Label(top, text="Room:").pack(side="right")

        self.status = ttk.Label(root, name="status", text="", anchor="w", padding=(6, 2), relief="sunken")
        self.status.pack(side="bottom", fill="x")
        self.input = ttk.Entry(root, name="input", font=self.font)
        self.input.pack(side="bottom", fill="x", padx=6, pady=4)
        self.input.bind("<Return>", self._entered)
        self.input.bind("<Up>", self._up)
        self.input.bind("<Down>", self._down)

        body = ttk.PanedWindow(root, name="body", orient="horizontal")
        body.pack(side="top", fill="both", expand=True, padx=6)
        self.notebook = ttk.Notebook(body, name="tabs")
        body.add(self.notebook, weight=4)
        side = ttk.Frame(body, name="side")
        body.add(side, weight=1)
        ttk.Label(side, text="Members", font=self.bold).pack(side="top", anchor="w", padx=4)
        self.members = tkinter.Listbox(side, name="members", width=16, activestyle="none", borderwidth=0,
                                       highlightthickness=0, font=self.font)
        self.members.pack(side="top", fill="both", expand=True, padx=(4, 0))

        self._tabs: dict[str, _Tab] = {}
        self._tab(ROOM_TAB)
        self.notebook.bind("<<NotebookTabChanged>>", self._tab_changed)
        self.input.focus_set()

    def attach(self, presenter: WindowPresenter) -> None:
        """Hand keys and clicks to C{presenter} from now on; closing the window asks it to leave."""
        self.presenter = presenter
        self.root.protocol("WM_DELETE_WINDOW", presenter.close_requested)

    # --- WindowView ---------------------------------------------------------------------------------

    def add(self, shown: Shown) -> None:
        """Show one line at the end of its tab (opening the tab if needed)."""
        self._tab(shown.tab).add(shown)

    def clear(self, tab: str) -> None:
        """Remove the lines shown in C{tab}."""
        self._tab(tab).clear()

    def set_room(self, room: str | None, topic: str | None) -> None:
        """Show the room's name and topic at the top, and the room's name on its tab."""
        self.room.configure(text=room or "(no room)")
        self.topic.configure(text=topic or "")
        self.notebook.tab(self._tabs[ROOM_TAB].frame, text=room or "room")

    def set_members(self, members: Sequence[str]) -> None:
        """Show the members of the room."""
        self.members.delete(0, "end")
        for member in members:
            self.members.insert("end", member)

    def set_status(self, text: str) -> None:
        """Show C{text} in the status line."""
        self.status.configure(text=text)

    def set_input(self, text: str) -> None:
        """Replace the input line with C{text}, the cursor at its end."""
        self.input.delete(0, "end")
        self.input.insert(0, text)
        self.input.icursor("end")

    def set_secret(self, secret: bool) -> None:
        """Show what is typed in the input line as C{*}, or as it is."""
        self.input.configure(show="*" if secret else "")

    def close(self) -> None:
        """Close the window (the program ends once the reactor stops)."""
        self.root.withdraw()

    # --- events -------------------------------------------------------------------------------------

    def _tab(self, name: str) -> _Tab:
        tab = self._tabs.get(name)
        if tab is None:
            tab = self._tabs[name] = _Tab(self.notebook, f"tab{len(self._tabs)}", self.font)
            self.notebook.add(tab.frame, text=name or "room")
        return tab

    def _tab_changed(self, event: object) -> None:
        selected = self.notebook.select()
        for name, tab in self._tabs.items():
            if str(tab.frame) == selected and self.presenter is not None:
                self.presenter.tab_selected(name)
        self.input.focus_set()

    def _entered(self, event: object) -> str:
        if self.presenter is not None:
            self.presenter.entered(self.input.get())
        return "break"

    def _up(self, event: object) -> str:
        if self.presenter is not None:
            self.presenter.up(self.input.get())
        return "break"

    def _down(self, event: object) -> str:
        if self.presenter is not None:
            self.presenter.down()
        return "break"

    def _join(self) -> None:
        if self.presenter is not None:
            self.presenter.join(self.join_entry.get())
        self.join_entry.delete(0, "end")
        self.input.focus_set()
