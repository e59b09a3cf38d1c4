"""
The desktop window: ``python -m chat_twisted.gui [--host H] [--port P] [--nick N] [--tls | --ca
FILE | --insecure] [--config FILE]``, the terminal client's sibling on Tk.

It shares the terminal client's connection (L{ServerSide}, L{Dialler}), session (L{ChatClient}),
reconnecting, options and line styles. C{model} holds the display-free logic
(L{WindowPresenter}: which tab and style each server line gets, the room, topic and members, the
input history, the status line); C{view} is the thin Tk window and C{dialog} the login form
(C{login}: its fields and the remembered last login); C{app} has L{run} and L{main}.
"""
