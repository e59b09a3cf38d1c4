"""
The server's log as JSON lines, for log shippers: ``twistd -n --logger chat_twisted.logs.json_observer chat ...``.

twistd's C{--logger} option names a function that returns the log observer to use instead of its
text log. L{json_observer} is one: each event becomes one JSON object on a line of its own, in
twisted.logger's JSON form (C{log_format}, C{log_level}, C{log_namespace}, C{log_time}, the
event's fields, C{log_failure}) plus C{text}, the event worded as the text log words it (with
a failure's traceback). The events are the same as the text log's, so it never holds a message body or a
password either. The text log stays the default.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

from twisted.logger import FileLogObserver, ILogObserver, LogEvent, eventAsJSON, eventAsText

#: The environment variable naming the file the JSON lines are appended to (stdout if unset).
JSON_LOG_PATH = "CHAT_LOG_JSON"


def json_observer() -> ILogObserver:
    """
    Return an observer writing each event as a JSON line to the file named by C{$CHAT_LOG_JSON}
    (appended to, created if missing), or to stdout if it is unset or empty.
    """
    path = os.environ.get(JSON_LOG_PATH)
    out = open(path, "a", encoding="utf-8", buffering=1) if path else sys.stdout
    return json_lines_observer(out)


def json_lines_observer(out: IO[Any]) -> ILogObserver:
    """Return an observer writing each event to C{out} as one JSON object and a newline."""
    return FileLogObserver(out, json_line)


def json_line(event: LogEvent) -> str:
    """Return C{event} as a line of JSON: twisted.logger's form, plus its C{text} (and traceback)."""
    text = eventAsText(event, includeTraceback=True, includeTimestamp=False, includeSystem=False)
    return eventAsJSON(dict(event, text=text)) + "\n"
