"""C{python -m chat_twisted.gui}: open the chat's desktop window."""

from chat_twisted.gui.app import main

if __name__ == "__main__":
    main()
