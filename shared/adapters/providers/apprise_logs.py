"""What Apprise and the HTTP library under it log, kept free of Apprise URLs' tokens."""

from __future__ import annotations

import logging

from apprise import LOGGER_NAME

URL_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.poolmanager",
    "urllib3.util.retry",
    "urllib3.response",
    "urllib3.connection",
)
"""Where Apprise's HTTP requests log: urllib3 writes each request's path and query
(``POST /hooks/<token>?t=<token>``) at DEBUG, and its retries' at WARNING."""


class _MaskRequestPaths(logging.Filter):
    """Keep urllib3's lines (host, method, status) but not the path and query they
    name: an Apprise URL carries its service's tokens there."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_masked_path(a) for a in record.args)
        return True


def _masked_path(arg: object) -> object:
    text = str(arg) if not isinstance(arg, int | float) else ""
    return "/***" if text.startswith("/") or "://" in text else arg


def keep_apprise_logs_in_results() -> None:
    """Apprise logs whole URLs (tokens and all) when it cannot load one: its records
    stay with each call's result and never reach the platform's handlers; the HTTP
    library under it logs with the paths masked."""
    apprise_log = logging.getLogger(LOGGER_NAME)  # Apprise gives it a NullHandler
    apprise_log.propagate = False
    apprise_log.setLevel(logging.WARNING)
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _MaskRequestPaths) for f in logger.filters):
            logger.addFilter(_MaskRequestPaths())
