"""Licences and credits of each photo: free text -> one SPDX-like id; the creator where the source names one.

Sources write licences every way: Creative Commons legal-code URLs
(``http://creativecommons.org/licenses/by-nc/4.0/``), GBIF's enum (``CC_BY_4_0``), Commons' long names
(``Creative Commons Attribution-Share Alike 4.0 International``), short names (``CC BY-SA 3.0``). They
all become one id (``CC-BY-SA-4.0``, ``CC-BY-NC-4.0``, ``CC0-1.0``, ``PD``, ``unknown``); the text as the
source gave it stays in the manifest's ``license_raw`` column. Notes that name no licence (``see origin``,
``Wikimedia Commons (varies)``, ``unverified: ...``) are ``unknown``: nobody checked them, so they are
never published as open.

``open`` means what the usual definitions (opendefinition.org, Creative Commons' "approved for free cultural
works") call open: CC0, public domain, CC BY and CC BY-SA, any version. Non-commercial (NC) and
no-derivatives (ND) licences are *restricted*: publish takes them only with ``--licences restricted`` (or
``all``) and then only into a private repo. ``unknown`` is neither.
"""

from __future__ import annotations

import re

UNKNOWN = "unknown"
PUBLIC_DOMAIN = "PD"
CC0 = "CC0-1.0"

_CC_URL = re.compile(r"creativecommons\.org/licen[cs]es/([a-z-]+)/(\d(?:\.\d)?)", re.I)
_CC_SHORT = re.compile(r"\bcc[ _-]?(by(?:[ _-](?:nc|sa|nd))*)(?:[ _-]?(\d(?:[._]\d)?))?(?![a-z])", re.I)
_CC_LONG = re.compile(r"^(?:creative\s*commons\s+)?attribution\b", re.I)
_VERSION = re.compile(r"\b(\d\.\d)\b")
_OPEN = re.compile(r"^(CC0-1\.0|PD|CC-BY(-SA)?-\d\.\d)$")
_KNOWN_CC = re.compile(r"^CC-BY(-NC)?(-SA|-ND)?-\d\.\d$")  # every CC licence with attribution, NC/ND included
_OPEN_OR_NC = re.compile(r"^(CC0-1\.0|PD|CC-BY(-NC)?(-SA)?-\d\.\d)$")  # what GBIF's "open" filter lets through
_NOT_STATED = re.compile(r"^\s*(unverified|see |unknown|none|n/?a|all rights reserved|\(c\)|©)", re.I)


def _cc_id(parts: list[str], version: str | None) -> str:
    """``["by", "nc", "sa"]``, ``"4.0"`` -> ``CC-BY-NC-SA-4.0`` (SPDX order: BY, NC, then SA or ND)."""
    order = [p for p in ("by", "nc", "sa", "nd") if p in parts]
    if "by" not in order:
        return UNKNOWN
    version = version or "4.0"
    if "." not in version:
        version += ".0"
    return "CC-" + "-".join(p.upper() for p in order) + f"-{version}"


def _long_name_parts(words: str) -> list[str]:
    """``Attribution-Share Alike``, ``Attribution-NonCommercial-NoDerivs`` -> ``["by", "sa"]``, ``[...]``."""
    low = re.sub(r"[\s_-]+", "", words.lower())
    parts = ["by"]
    if "noncommercial" in low:
        parts.append("nc")
    if "sharealike" in low:
        parts.append("sa")
    if "noderiv" in low:
        parts.append("nd")
    return parts


def normalise_licence(raw: str | None) -> str:
    """A licence as any source writes it -> an SPDX-like id (``CC-BY-SA-4.0``, ``CC0-1.0``, ``PD``, ``unknown``).

    >>> normalise_licence("Creative Commons Attribution-Share Alike 4.0")
    'CC-BY-SA-4.0'
    >>> normalise_licence("http://creativecommons.org/licenses/by-nc/4.0/")
    'CC-BY-NC-4.0'
    >>> normalise_licence("Wikimedia Commons (varies)")
    'unknown'
    """
    text = (raw or "").strip()
    low = text.lower()
    if not low or _NOT_STATED.match(low) or "(see origin)" in low or "(varies)" in low:
        return UNKNOWN
    if "publicdomain/zero" in low or re.search(r"\bcc0\b|cc0[_ -]?1|creative commons zero", low):
        return CC0
    if "publicdomain/mark" in low or re.fullmatch(r"public[ _-]?domain( mark.*)?|pd|pdm|pd-\w+", low):
        return PUBLIC_DOMAIN
    m = _CC_URL.search(text)
    if m:
        return _cc_id(m.group(1).lower().split("-"), m.group(2))
    m = _CC_SHORT.search(text)
    if m:
        return _cc_id(re.split(r"[ _-]", m.group(1).lower()), (m.group(2) or "").replace("_", ".") or None)
    if _CC_LONG.search(text):
        version = _VERSION.search(text)
        return _cc_id(_long_name_parts(text), version.group(1) if version else None)
    return UNKNOWN


def is_open_licence(licence: str | None) -> bool:
    """Open: CC0, PD, CC BY, CC BY-SA (any version). Not NC, not ND, not unknown.

    Takes an id or raw text (raw text is normalised first)."""
    return bool(_OPEN.match(normalise_licence(licence)))


def is_restricted_licence(licence: str | None) -> bool:
    """A known Creative Commons licence that is not open: NC and/or ND (``CC-BY-NC-4.0``, ``CC-BY-ND-2.0``...)."""
    lic = normalise_licence(licence)
    return bool(_KNOWN_CC.match(lic)) and not _OPEN.match(lic)


def is_open_or_noncommercial(licence: str | None) -> bool:
    """CC0, PD, CC BY, CC BY-SA, CC BY-NC, CC BY-NC-SA: what a crawl may fetch under GBIF's ``open`` filter
    (publishing then keeps the NC ones out unless asked; see :func:`is_open_licence`)."""
    return bool(_OPEN_OR_NC.match(normalise_licence(licence)))


def publishable(licence: str | None, choice: str) -> bool:
    """Whether ``publish --licences <choice>`` takes an image: ``open`` (the default) only open licences,
    ``restricted`` open + NC/ND, ``all`` every image, unknown included."""
    if choice == "all":
        return True
    if choice == "restricted":
        return is_open_licence(licence) or is_restricted_licence(licence)
    return is_open_licence(licence)


def why_not_open(licence: str | None) -> str:
    """The reason a photo is left out of an open-licence publish, in words (for counting)."""
    lic = normalise_licence(licence)
    if lic == UNKNOWN:
        return "licence unknown or unverified"
    if "-ND-" in lic:
        return f"no-derivatives licence ({lic})"
    if "-NC-" in lic:
        return f"non-commercial licence ({lic})"
    return "" if is_open_licence(lic) else f"not an open licence ({lic})"


# ---------------------------------------------------------------------------------------------
# creators

_TAGS = re.compile(r"<[^>]+>")


def clean_creator(text: str | None) -> str:
    """A creator as sources give it (Commons' ``Artist`` is HTML: ``<a href=...>Ana B.</a>``) -> plain text."""
    import html

    plain = html.unescape(_TAGS.sub("", text or ""))
    return re.sub(r"\s+", " ", plain).strip()


def inaturalist_creator(attribution: str | None) -> str:
    """iNaturalist's photo attribution (``(c) Ana B., some rights reserved (CC BY-NC)``) -> ``Ana B.``."""
    text = clean_creator(attribution)
    m = re.match(r"^\s*(?:\(c\)|©)\s*(.+?)(?:,\s*(?:some|all|no) rights reserved.*)?$", text, re.I)
    return m.group(1).strip() if m else text
