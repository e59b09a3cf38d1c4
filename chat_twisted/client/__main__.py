"""C{python -m chat_twisted.client}: run the chat client."""

from chat_twisted.client.app import main

if __name__ == "__main__":
    main()
