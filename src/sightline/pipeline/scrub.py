"""Step ``scrub``: remove secrets and personal data from URLs, titles and properties.

What is removed (replaced by ``[redacted]``):

- In ``pageUrl``, ``pagePath`` and ``referrer``: the value of every query-string or
  fragment parameter whose *name* is on the denylist (``?token=…``, ``#access_token=…``),
  any parameter value that contains a sensitive *value* (below), sensitive values in the
  path, and user:password credentials before the host (dropped).
- In ``pageTitle``, ``utm_*`` and every string inside ``properties``: sensitive values.
- In ``properties``: the whole value of every key whose name is on the denylist, at any
  depth.

Names are matched by words, so ``api_key``, ``apiKey`` and ``X-Api-Key`` are all caught
while ``keyword`` and ``monkey`` are not. A name is on the denylist when

- it is, as a whole (lower case, separators removed), one of ``DENIED_NAMES`` (``code``,
  ``key``, ``session``, ``sid``, ``state``, ad click ids such as ``gclid`` and ``fbclid``,
  ...), or
- one of its words or two adjacent words joined is one of ``DENIED_WORDS`` (``password``,
  ``token``, ``secret``, ``auth``, ``email``, ``apikey``, ``sessionid``, ``cardnumber``, ...).

Sensitive values (``VALUE_PATTERNS``): e-mail addresses; card-like numbers (13-19 digits,
spaces or dashes allowed, passing the Luhn check) and any run of 16 or more digits; US
social security numbers; IBANs (checksum verified); JSON Web Tokens; ``Bearer`` tokens;
private-key blocks; API keys with well-known prefixes (Stripe, AWS, GitHub, GitLab,
Slack, Google, OpenAI).

The denylist is overridable through settings: ``scrub_names`` adds names/words,
``scrub_allow`` exempts names (e.g. ``code`` on a site whose ``?code=`` is a product
code) and ``scrub_patterns`` adds value regexes. Results are cached per distinct string.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from sightline.events import Event
from sightline.pipeline import Drop, RequestContext
from sightline.pipeline.identity import IP_PREFIX_PROPERTY

if TYPE_CHECKING:
    from sightline.config import Settings

REDACTED = "[redacted]"

#: Whole names (lower case, only letters and digits) that are always sensitive.
DENIED_NAMES = frozenset(
    {
        "code", "key", "sig", "session", "sid", "state", "pass", "pw", "pin", "mail",
        "phpsessid", "jsessionid", "ticket", "nonce", "otp", "ssn", "cc", "ccn", "dob",
        # ad click ids and e-mail campaign recipient ids: one per person and click
        "gclid", "gbraid", "wbraid", "dclid", "msclkid", "fbclid", "yclid", "ttclid",
        "twclid", "lifatid", "igshid", "mceid", "hsenc", "hsmi", "mkttok",
    }
)  # fmt: skip

#: Words (or two adjacent words joined) that make a name sensitive.
DENIED_WORDS = frozenset(
    {
        "password", "passwd", "passphrase", "pwd", "secret", "secrets", "token", "tokens",
        "apikey", "accesskey", "privatekey", "auth", "authorization", "authorisation",
        "credential", "credentials", "signature", "jwt", "bearer", "cookie", "cookies",
        "csrf", "xsrf", "otp", "ssn", "cvv", "cvc", "iban", "email", "emails", "sessionid",
        "creditcard", "cardnumber", "ccnumber", "securitycode", "phone", "phonenumber",
        "ip", "ipaddress", "ipaddr", "firstname", "lastname", "fullname", "surname",
        "birthdate", "birthday", "dateofbirth", "passport",
    }
)  # fmt: skip

#: Names never scrubbed, whatever the denylist says (Sightline's own properties).
ALLOWED_NAMES = frozenset({IP_PREFIX_PROPERTY.strip("$").lower()})

VALUE_PATTERNS: dict[str, str] = {
    "email": (
        r"(?<![\w.%+\-])[\w.%+\-]{1,64}(?:@|%40)"
        r"[\w\-]{1,63}(?:\.[\w\-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    ),
    "card": r"(?<![\d])\d(?:[ \-]?\d){12,18}(?![\d])",
    "digits": r"(?<![\d])\d{16,}",
    "ssn": r"(?<![\d\-])\d{3}-\d{2}-\d{4}(?![\d\-])",
    "iban": r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
    "jwt": r"\beyJ[\w\-]{5,}\.[\w\-]{5,}\.[\w\-]*",
    "bearer": r"(?i:\bbearer\s+)[\w.~+/\-]{8,}=*",
    "private_key": (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.|\n)*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"
    ),
    "api_key": (
        r"\b(?:"
        r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}"
        r"|AKIA[0-9A-Z]{16}"
        r"|gh[pousr]_[A-Za-z0-9]{30,}"
        r"|github_pat_[A-Za-z0-9_]{30,}"
        r"|glpat-[\w\-]{20,}"
        r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
        r"|AIza[\w\-]{35}"
        r"|sk-(?:proj-)?[\w\-]{20,}"
        r")"
    ),
}  # fmt: skip

_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_NAME_CACHE_LIMIT = 8192


def normalise_name(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


class Scrubber:
    """The ``scrub`` step, and the string scrubbing it is made of."""

    def __init__(
        self,
        extra_names: Iterable[str] = (),
        allow: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
        cache_size: int = 16_384,
    ) -> None:
        extra = {normalise_name(name) for name in extra_names if name.strip()}
        self.denied_names = DENIED_NAMES | extra
        self.denied_words = DENIED_WORDS | extra
        self.allowed_names = ALLOWED_NAMES | {normalise_name(name) for name in allow}
        patterns = [f"(?P<{name}>{regex})" for name, regex in VALUE_PATTERNS.items()]
        patterns += [f"(?:{regex})" for regex in extra_patterns]
        self._values = re.compile("|".join(patterns))
        self._names: dict[str, bool] = {}
        self.scrub_text = functools.lru_cache(maxsize=cache_size)(self._scrub_text)
        self.scrub_url = functools.lru_cache(maxsize=cache_size)(self._scrub_url)
        #: Strings known to need no change, as URLs and as text: a set lookup is the
        #: cheapest check for the usual, clean event.
        self._clean_urls: set[str] = set()
        self._clean_texts: set[str] = {""}
        self._clean_limit = cache_size

    @classmethod
    def from_settings(cls, settings: Settings) -> Scrubber:
        return cls(settings.scrub_names, settings.scrub_allow, settings.scrub_patterns)

    # -- names -----------------------------------------------------------------------

    def is_denied_name(self, name: str) -> bool:
        known = self._names.get(name)
        if known is None:
            known = self._judge_name(name)
            if len(self._names) >= _NAME_CACHE_LIMIT:
                self._names.clear()
            self._names[name] = known
        return known

    def _judge_name(self, name: str) -> bool:
        normal = normalise_name(name)
        if not normal or normal in self.allowed_names:
            return False
        if normal in self.denied_names:
            return True
        words = [word.lower() for word in _WORDS.findall(name)]
        denied = self.denied_words
        if any(word in denied for word in words):
            return True
        return any(a + b in denied for a, b in itertools.pairwise(words))

    # -- values ----------------------------------------------------------------------

    def _replace(self, match: re.Match[str]) -> str:
        kind = match.lastgroup
        text = match.group()
        if kind == "card":
            digits = text.replace(" ", "").replace("-", "")
            if not luhn_valid(digits) and not (len(digits) >= 16 and digits == text):
                return text
        elif kind == "iban" and not iban_valid(text):
            return text
        return REDACTED

    def _scrub_text(self, text: str) -> str:
        if self._values.search(text) is None:
            return text
        return self._values.sub(self._replace, text)

    def _has_value(self, text: str) -> bool:
        if "%" in text or "+" in text:
            text = unquote_plus(text)
        return self._scrub_text(text) != text

    def _scrub_params(self, params: str) -> str:
        parts = params.split("&")
        changed = False
        for index, part in enumerate(parts):
            name, eq, value = part.partition("=")
            if not eq or not value:
                continue
            plain = unquote_plus(name) if "%" in name or "+" in name else name
            if self.is_denied_name(plain) or self._has_value(value):
                parts[index] = f"{name}={REDACTED}"
                changed = True
        return "&".join(parts) if changed else params

    def _scrub_url(self, url: str) -> str:
        rest, hash_mark, fragment = url.partition("#")
        base, question, query = rest.partition("?")
        prefix = ""
        scheme, sep, after = base.partition("://")
        if sep and "/" not in scheme:
            netloc, slash, path = after.partition("/")
            if "@" in netloc:
                netloc = netloc.rpartition("@")[2]
            prefix = f"{scheme}://{netloc}{slash}"
            base = path
        base = self.scrub_text(base)
        if query:
            query = self._scrub_params(query)
        if fragment:
            if "=" in fragment:
                route, mark, params = fragment.rpartition("?")
                fragment = f"{self.scrub_text(route)}{mark}{self._scrub_params(params)}"
            else:
                fragment = self.scrub_text(fragment)
        cleaned = f"{prefix}{base}{question}{query}{hash_mark}{fragment}"
        return url if cleaned == url else cleaned

    # -- properties ------------------------------------------------------------------

    def _scrub_mapping(self, mapping: dict[str, Any]) -> None:
        names = self._names
        checked_text = self._checked_text
        for key, value in mapping.items():
            denied = names.get(key)
            if denied is None:
                denied = self.is_denied_name(key)
            if denied:
                if value is not None and value != "":
                    mapping[key] = REDACTED
                continue
            kind = value.__class__
            if kind is str:
                if value:
                    cleaned = checked_text(value)
                    if cleaned is not value:
                        mapping[key] = cleaned
            elif kind is dict:
                self._scrub_mapping(value)
            elif kind is list:
                self._scrub_list(value)

    def _checked_url(self, url: str) -> str:
        cleaned = self.scrub_url(url)
        if cleaned == url:
            if len(self._clean_urls) >= self._clean_limit:
                self._clean_urls.clear()
            self._clean_urls.add(url)
        return cleaned

    def _checked_text(self, text: str) -> str:
        cleaned = self.scrub_text(text)
        if cleaned == text:
            if len(self._clean_texts) >= self._clean_limit:
                self._clean_texts.clear()
                self._clean_texts.add("")
            self._clean_texts.add(text)
        return cleaned

    def scrub_properties(self, properties: dict[str, Any]) -> None:
        """Scrub ``properties`` in place.

        The usual mapping needs no change: every key is known to be allowed and every
        string known to be clean. That is checked first, with set and dict lookups; a
        mapping with a new or denied key, a string not seen before, or nested values is
        walked (which also learns its keys and strings).
        """
        names = self._names
        clean = self._clean_texts
        for key, value in properties.items():
            if names.get(key) is not False:
                break
            kind = value.__class__
            if kind is str:
                if value not in clean:
                    break
            elif kind is dict or kind is list:
                break
        else:
            return
        self._scrub_mapping(properties)

    def _scrub_list(self, items: list[Any]) -> None:
        for index, value in enumerate(items):
            if type(value) is str:
                if value:
                    items[index] = self.scrub_text(value)
            elif type(value) is dict:
                self._scrub_mapping(value)
            elif type(value) is list:
                self._scrub_list(value)

    # -- the step --------------------------------------------------------------------

    def scrub_event(self, event: Event, ctx: RequestContext) -> Event | Drop:
        urls = self._clean_urls
        value = event.page_url
        if value and value not in urls:
            event.page_url = self._checked_url(value)
        value = event.page_path
        if value and value not in urls:
            event.page_path = self._checked_url(value)
        value = event.referrer
        if value and value not in urls:
            event.referrer = self._checked_url(value)
        value = event.page_title
        if value and value not in self._clean_texts:
            event.page_title = self._checked_text(value)
        if event.utm_source or event.utm_medium or event.utm_campaign:
            scrub_text = self.scrub_text
            event.utm_source = scrub_text(event.utm_source)
            event.utm_medium = scrub_text(event.utm_medium)
            event.utm_campaign = scrub_text(event.utm_campaign)
        if event.utm_term or event.utm_content:
            scrub_text = self.scrub_text
            event.utm_term = scrub_text(event.utm_term)
            event.utm_content = scrub_text(event.utm_content)
        if event.properties:
            self.scrub_properties(event.properties)
        # The raw user agent goes no further than the collector: the earlier steps read
        # device, OS and browser from it and made the visitor hash with it. (It is also a
        # fifth of an event's bytes on the way to the store.)
        event.user_agent = ""
        return event

    __call__ = scrub_event
