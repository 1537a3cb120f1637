"""Canonical article URLs, so one article reached through many links is stored once."""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_WEB_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# Query keys that only say where a click came from; compared lower-case.
_TRACKING_KEYS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid",
        "ttclid", "twclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "mkt_tok",
        "_ga", "_gl", "_hsenc", "_hsmi", "hsctatracking", "vero_id", "vero_conv",
        "ref", "ref_src", "ref_url", "referrer", "spm", "cmpid", "cmp", "ocid", "ncid",
        "icid", "s_cid", "sc_cid", "s_kwcid", "wt.mc_id", "wt_mc", "xtor", "at_medium",
        "at_campaign", "smid", "smtyp", "guccounter", "guce_referrer", "guce_referrer_sig",
        "rb_clickid", "oly_enc_id", "oly_anon_id", "wickedid", "mbid", "soc_src", "soc_trk",
        "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
        "__twitter_impression", "fb_action_ids", "fb_action_types", "fb_ref", "fb_source",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "hsa_")
_PERCENT_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
_HOST_NAME = re.compile(r"[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?")
_IPV6 = re.compile(r"[0-9a-f:.]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9/%:@!$&'()*+,;=\-._~?]")
# Characters RFC 3986 allows unescaped in a path or query; `%` keeps existing escapes.
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered in _TRACKING_KEYS or lowered.startswith(_TRACKING_PREFIXES)


def _normalise_escapes(text: str, safe: str) -> str:
    """Percent-encode what must be, and upper-case existing escapes (`%7e` -> `%7E`)."""
    if _UNSAFE.search(text):
        text = quote(text, safe=safe)
    if "%" in text:
        text = _PERCENT_ESCAPE.sub(lambda m: m.group(0).upper(), text)
    return text


def _clean_query(query: str) -> str:
    """Drop tracking pairs; the rest keep their order and exact encoding.

    Order is kept on purpose: the URL a site publishes is the one people and scripts match
    on, and feeds rarely list one article with its parameters shuffled.
    """
    kept: list[str] = []
    for pair in query.split("&"):
        if not pair:
            continue
        key = pair.split("=", 1)[0]
        if _is_tracking(key.replace("+", " ").strip()):
            continue
        kept.append(_normalise_escapes(pair, _QUERY_SAFE))
    return "&".join(kept)


def _clean_host(host: str) -> str:
    """The host in ASCII (IDNA for international names), or "" if it is not a host name.

    Refusing odd characters keeps quotes, spaces and angle brackets out of stored links.
    """
    host = host.rstrip(".")
    if ":" in host:
        return f"[{host}]" if _IPV6.fullmatch(host) else ""
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return ""
    return host if _HOST_NAME.fullmatch(host) else ""


def canonical_url(url: str, base: str | None = None) -> str:
    """The stable form of a web link: resolved, tidied, stripped of click tracking.

    Scheme and host are lower-cased, default ports, user info and fragments dropped (a
    `#!` route is kept: it names the page), path case kept. Returns "" for anything that
    is not an http(s) URL (`javascript:`, `mailto:`, unresolvable relative paths), so a
    caller can treat "" as "no usable link". Idempotent.
    """
    raw = url.strip()
    if not raw:
        return ""
    if base and not raw.lower().startswith(("http://", "https://")):
        try:
            raw = urljoin(base.strip(), raw)
        except ValueError:
            return ""
    elif raw.startswith("//"):
        raw = "https:" + raw
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:
        return ""
    scheme = parts.scheme.lower()
    host = _clean_host(parts.hostname or "")
    if scheme not in _WEB_SCHEMES or not host:
        return ""
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _normalise_escapes(parts.path, _PATH_SAFE) or "/"
    query = _clean_query(parts.query) if parts.query else ""
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    fragment = _normalise_escapes(fragment, _QUERY_SAFE + "#")
    return urlunsplit((scheme, netloc, path, query, fragment))


def url_host(url: str) -> str:
    """The lower-case host without a leading `www.`: a short outlet name for display."""
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    host = host.rstrip(".")
    return host[4:] if host.startswith("www.") else host
