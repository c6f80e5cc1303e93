"""Secrets kept out of every written file and log line. Standard library only (the facts layer).

What is a secret here:

- the value of an environment variable whose name looks secret: a part of the name (split at ``_``) that is or ends
  with TOKEN, KEY, SECRET, PASSWORD, PASSWD, CREDENTIAL or AUTH, plural too, or is PASS (``HF_TOKEN``,
  ``WANDB_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``MY_DB_PASSWORD``, ``GOOGLE_APPLICATION_CREDENTIALS``, ``DB_PASS``;
  not ``TOKENIZERS_PARALLELISM``);
- the password of a URL ``scheme://user:password@host`` (an Optuna storage, a proxy), in any text, and the same
  password wherever it appears, when an environment variable or the config holds that URL.

Values shorter than ``MIN_LENGTH`` characters are left alone (``true``, ``1``, ``off`` would be redacted
everywhere); a URL's password is redacted inside the URL whatever its length. A redacted value reads ``***``.

A config is written with each ``${oc.env:...}`` interpolation as it was written (``config_as_written``), and the
other files that quote its values (model card, metrics, a sweep's results) show a value that came from such an
interpolation as that interpolation (``written``). Log records are redacted as they are made (``guard_logging``:
train.log, the console, a rank's log, and any handler a library adds later).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any, Dict, Iterable, Mapping, Optional, Set
from urllib.parse import unquote

MASK = "***"
MIN_LENGTH = 6
SECRET_WORDS = ("TOKEN", "KEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH")  # a name's part ends with one
_SECRET_PART = re.compile(r"PASS|[A-Z0-9]*(?:%s)S?" % "|".join(SECRET_WORDS))  # PASS: a whole part only (DB_PASS)
# scheme://user:password@ : the password runs to the last @ of the URL (a password may hold @ : /), not past a
# space or a quote
URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*):(?P<password>[^\s'\"]*)@")
ENV_INTERPOLATION = re.compile(r"\$\{oc\.env:\s*([^,}\s]+)")


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret."""
    return any(_SECRET_PART.fullmatch(part) for part in re.split(r"[^A-Z0-9]+", name.upper()) if part)


def url_passwords(text: str) -> Set[str]:
    """The passwords of the URLs in ``text`` (each as written and percent-decoded)."""
    out: Set[str] = set()
    for m in URL_PASSWORD.finditer(text or ""):
        if m.group("password"):
            out |= {m.group("password"), unquote(m.group("password"))}
    return out


def secret_values(extra: Iterable[str] = (), environ: Optional[Mapping[str, str]] = None) -> Set[str]:
    """The values no written file may hold: those of the environment variables whose names look secret, and the
    passwords of URLs held by any environment variable or by ``extra`` (a config's strings); each at least
    MIN_LENGTH characters long."""
    values: Set[str] = set()
    for name, value in _items(os.environ if environ is None else environ):
        if looks_secret(name):
            values |= {value, value.strip()}
        if "://" in value:
            values |= url_passwords(value)
    for text in extra:
        if isinstance(text, str) and "://" in text:
            values |= url_passwords(text)
    return {v for v in values if len(v) >= MIN_LENGTH}


def _items(env: Mapping[str, str]) -> list:
    """The variables, as a list: another thread may set one while a log record is made (a dict changing size)."""
    for _ in range(5):
        try:
            return list(env.items())
        except RuntimeError:
            continue
    return []


def redact_url(url: Any) -> str:
    """A URL with its password replaced by *** (``postgresql://user:secret@host/db`` → ``user:***@host/db``)."""
    return URL_PASSWORD.sub(lambda m: f"{m.group('head')}:{MASK}@", str(url))


def redact(text: str, values: Optional[Iterable[str]] = None) -> str:
    """``text`` with every URL password and every secret value (``secret_values()`` unless given) replaced by ***."""
    if not isinstance(text, str) or not text:
        return text
    out = redact_url(text) if "://" in text else text
    for value in sorted(secret_values() if values is None else values, key=len, reverse=True):
        if value and value in out:
            out = out.replace(value, MASK)
    return out


def redact_obj(obj: Any, values: Optional[Iterable[str]] = None) -> Any:
    """A copy of a plain value (dicts, lists, tuples, strings, numbers) with every string redacted (dict keys too);
    numbers, booleans and None unchanged."""
    values = sorted(secret_values() if values is None else values, key=len, reverse=True)
    return _map_strings(obj, lambda s: redact(s, values))


def _map_strings(obj: Any, fn) -> Any:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, Mapping):
        return {(fn(k) if isinstance(k, str) else k): _map_strings(v, fn) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_map_strings(v, fn) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_map_strings(v, fn) for v in obj)
    return obj


# ----------------------------------------------------------------------------------------------- configs
def _strings(obj: Any) -> Iterable[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, Mapping):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _strings(v)


def env_references(raw: Any) -> Dict[str, str]:
    """``{NAME: "${oc.env:NAME}"}`` for each ``${oc.env:NAME}`` in a config as written (a plain container from
    ``OmegaConf.to_container(cfg, resolve=False)``, or its text)."""
    return {name: "${oc.env:%s}" % name for text in _strings(raw) for name in ENV_INTERPOLATION.findall(text)}


def _env_values(raw: Any) -> Dict[str, str]:
    """``{value: "${oc.env:NAME}"}`` of the set variables the config refers to, longest first."""
    found = {os.environ[n]: text for n, text in env_references(raw).items()
             if len(os.environ.get(n, "")) >= MIN_LENGTH}
    return dict(sorted(found.items(), key=lambda kv: len(kv[0]), reverse=True))


def _unresolve(obj: Any, env: Dict[str, str]) -> Any:
    """Each value of a referred-to variable inside the strings of ``obj`` shown as its interpolation."""
    if not env:
        return obj

    def back(s: str) -> str:
        for value, text in env.items():
            if value in s:
                s = s.replace(value, text)
        return s

    return _map_strings(obj, back)


def with_env_interpolations(raw: Any, resolved: Any, strings_only: bool = False) -> Any:
    """The resolved config (a plain container) with each value that came from ``${oc.env:...}`` as written: a node
    written with an ``oc.env`` interpolation keeps its text; a node that is another interpolation (``${a}`` of such a
    node) shows the variable's value as its interpolation. ``strings_only``: only string values are kept as written
    (a config that will be resolved again, where an untyped ``${oc.env:...}`` would turn a number into a string)."""
    env = _env_values(raw)

    def walk(r: Any, v: Any) -> Any:
        if isinstance(v, Mapping):
            r = r if isinstance(r, Mapping) else {}
            return {k: walk(r.get(k), x) for k, x in v.items()}
        if isinstance(v, list):
            r = r if isinstance(r, list) and len(r) == len(v) else [None] * len(v)
            return [walk(a, b) for a, b in zip(r, v)]
        if isinstance(r, str) and "${" in r:
            if "oc.env" in r and (isinstance(v, str) or not strings_only):
                return r
            return _unresolve(v, env)
        return v

    return walk(raw, resolved)


def config_as_written(raw: Any, resolved: Any) -> Any:
    """What a run writes as its config.yaml: resolved, each ``${oc.env:...}`` as written, then redacted."""
    out = with_env_interpolations(raw, resolved)
    return redact_obj(out, secret_values(extra=_strings(resolved)))


def written(obj: Any, raw_config: Any = None) -> Any:
    """Text or a plain value as a written file may quote it: each value of an environment variable that the config
    (as written: ``raw_config``) refers to through ``${oc.env:...}`` shown as that interpolation, then redacted."""
    out = _unresolve(obj, _env_values(raw_config)) if raw_config is not None else obj
    extra = list(_strings(raw_config)) if raw_config is not None else []
    return redact_obj(out, secret_values(extra=extra))


def scrub_file(path: str) -> bool:
    """Rewrite a text file redacted when it holds a secret (a link: the file it points to), whole or not at all
    (a unique temporary file beside it, moved onto it: jobs of a multirun may scrub the sweep's file at once), its
    mode kept; True when it did."""
    import shutil
    import tempfile

    path = os.path.realpath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return False
    clean = redact(text)
    if clean == text:
        return False
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(clean)
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return True


# ----------------------------------------------------------------------------------------------- logs
_FORMATTER = logging.Formatter()


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Redact a log record in place: its message (formatted with its arguments), its traceback and stack."""
    done = (id(record.msg), id(record.args))  # a record filled in after it was made (makeLogRecord) is seen again
    if getattr(record, "_secrets_scrubbed", None) == done:
        return record
    values = sorted(secret_values(), key=len, reverse=True)
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        message = None
    if message is not None:
        clean = redact(message, values)
        if clean != message:
            record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text, values)
    if record.stack_info:
        record.stack_info = redact(record.stack_info, values)
    record._secrets_scrubbed = (id(record.msg), id(record.args))
    return record


class RedactingFilter(logging.Filter):
    """A handler filter: no record it passes carries a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            scrub_record(record)
        except Exception:  # logging must never fail a run
            pass
        return True


_FILTER = RedactingFilter()


class _RedactingFactory:
    """The log record factory, wrapped: every record of every logger is redacted when it is made."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record = self.inner(*args, **kwargs)
        _FILTER.filter(record)
        return record


def guard_handler(handler: logging.Handler) -> logging.Handler:
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        handler.addFilter(_FILTER)
    return handler


def guard_logging() -> None:
    """Redact every log record of this process: the record factory (loggers and handlers made later too) and a
    filter on every handler there is now (train.log, the console). Idempotent; call it after logging is set up."""
    factory = logging.getLogRecordFactory()
    if not isinstance(factory, _RedactingFactory):
        logging.setLogRecordFactory(_RedactingFactory(factory))
    loggers = [logging.getLogger()] + [lg for lg in list(logging.Logger.manager.loggerDict.values())
                                       if isinstance(lg, logging.Logger)]
    for lg in loggers:
        for handler in list(lg.handlers):
            guard_handler(handler)
