"""Small inline SVG pictures of what each field answer means (drawn here: no files, no credits needed).

Under-cap views (gills, pores, teeth, ridges, smooth, a puffball), stems (ring, volva, ring and volva,
cortina, bare, none), stem bases (cup, bulb, root, plain), gill attachments, where it grows, and colour
swatches (spore prints, caps, gills). Strokes use
``currentColor``, so they follow the light and dark themes; each picture is decorative
(``aria-hidden``): the button's text says the answer.
"""

from __future__ import annotations

_SVG = '<svg class="pic" viewBox="0 0 64 48" width="64" height="48" aria-hidden="true" focusable="false">{}</svg>'
_CAP = '<path d="M6 20 Q32 -2 58 20 Z" fill="none" stroke="currentColor" stroke-width="2.5"/>'
_STEM = '<path d="M27 20 L26 42 M37 20 L38 42" stroke="currentColor" stroke-width="2.5" fill="none"/>'

HYMENIUM = {
    # seen from below: the cap's underside
    "gills": "".join(
        f'<line x1="32" y1="24" x2="{x}" y2="{y}" stroke="currentColor" stroke-width="2"/>'
        for x, y in (
            (6, 24),
            (9, 12),
            (18, 5),
            (32, 3),
            (46, 5),
            (55, 12),
            (58, 24),
            (55, 36),
            (46, 43),
            (32, 45),
            (18, 43),
            (9, 36),
        )
    )
    + '<circle cx="32" cy="24" r="22" fill="none" stroke="currentColor" stroke-width="2.5"/>',
    "pores": '<circle cx="32" cy="24" r="22" fill="none" stroke="currentColor" stroke-width="2.5"/>'
    + "".join(
        f'<circle cx="{x}" cy="{y}" r="2.2" fill="currentColor"/>'
        for x in range(16, 50, 7)
        for y in range(10, 40, 7)
        if (x - 32) ** 2 + (y - 24) ** 2 < 300
    ),
    "teeth": _CAP.replace("Z", "")
    + "".join(f'<path d="M{x} 19 L{x + 2} 31 L{x + 4} 19" fill="currentColor"/>' for x in range(10, 54, 7)),
    "ridges": _CAP
    + "".join(
        f'<path d="M{x} 20 q3 6 0 12 q-3 6 0 12" fill="none" stroke="currentColor" stroke-width="2"/>'
        for x in (14, 24, 34, 44)
    ),
    "smooth": _CAP + '<path d="M6 20 Q32 30 58 20" fill="none" stroke="currentColor" stroke-width="2"/>',
    "glebal": '<circle cx="32" cy="26" r="18" fill="none" stroke="currentColor" stroke-width="2.5"/>'
    + "".join(
        f'<circle cx="{x}" cy="{y}" r="1.6" fill="currentColor"/>'
        for x, y in ((26, 20), (34, 18), (40, 26), (30, 30), (24, 32), (36, 34), (32, 24))
    ),
}
_HALF = '<path d="M6 22 Q32 0 58 22 L58 24 L6 24 Z" fill="none" stroke="currentColor" stroke-width="2"/>'
_HALF_STEM = '<path d="M28 24 L28 46 M36 24 L36 46" stroke="currentColor" stroke-width="2.5" fill="none"/>'
GILL_ATTACHMENT = {  # cut in half: where the gills end
    "free": _HALF
    + _HALF_STEM
    + "".join(
        f'<line x1="{x}" y1="24" x2="{x}" y2="{y}" stroke="currentColor" stroke-width="2"/>'
        for x, y in ((12, 30), (18, 32), (24, 32), (40, 32), (46, 32), (52, 30))
    ),
    "attached": _HALF + _HALF_STEM + '<path d="M10 24 L28 30 M36 30 L54 24" stroke="currentColor" stroke-width="3"/>',
    "decurrent": _HALF + _HALF_STEM + '<path d="M10 24 L28 38 M36 38 L54 24" stroke="currentColor" stroke-width="3"/>',
}
_SMALL = (
    '<path d="M24 22 Q32 12 40 22 Z M31 22 L31 30 M33 22 L33 30" fill="none" stroke="currentColor" stroke-width="2"/>'
)
ECOLOGY = {
    "wood": '<rect x="6" y="28" width="52" height="12" rx="6" fill="none" stroke="currentColor" stroke-width="2.5"/>'
    + _SMALL.replace("22", "16").replace("12", "6").replace("30", "28"),
    "soil_trees": '<path d="M10 40 L10 14 M4 20 L10 8 L16 20 Z M52 40 L52 14 M46 20 L52 8 L58 20 Z" fill="none" '
    'stroke="currentColor" stroke-width="2"/><line x1="2" y1="40" x2="62" y2="40" stroke="currentColor" '
    'stroke-width="2"/>' + _SMALL.replace("30", "40"),
    "soil_open": '<path d="M4 40 L60 40 M10 40 l2 -6 M18 40 l2 -6 M44 40 l2 -6 M52 40 l2 -6" stroke="currentColor" '
    'stroke-width="2" fill="none"/>' + _SMALL.replace("30", "40"),
    "dung": '<ellipse cx="32" cy="36" rx="20" ry="7" fill="none" stroke="currentColor" stroke-width="2.5"/>'
    + _SMALL.replace("22", "16").replace("12", "6").replace("30", "29"),
    "litter": '<path d="M4 40 L60 40 M8 38 q6 -8 12 0 M22 39 q5 -6 10 0 M40 38 q6 -7 12 0 M50 36 l8 -4" '
    'stroke="currentColor" stroke-width="2" fill="none"/>' + _SMALL.replace("30", "37"),
    "on_fungus_or_insect": _CAP.replace("M6 20", "M14 30").replace("58 20", "50 30").replace("-2", "14")
    + _SMALL.replace("22", "12").replace("Q32 12", "Q32 2").replace("30", "20"),
}
STIPE = {
    "ring": _CAP + _STEM + '<path d="M24 27 Q32 34 40 27" fill="none" stroke="currentColor" stroke-width="3"/>',
    "volva": _CAP + _STEM + '<path d="M20 36 Q20 46 32 46 Q44 46 44 36" fill="none" stroke="currentColor" '
    'stroke-width="3"/>',
    "ring and volva": _CAP
    + _STEM
    + '<path d="M24 27 Q32 34 40 27" fill="none" stroke="currentColor" stroke-width="3"/>'
    + '<path d="M20 36 Q20 46 32 46 Q44 46 44 36" fill="none" stroke="currentColor" stroke-width="3"/>',
    "cortina": _CAP
    + _STEM
    + "".join(
        f'<path d="M{x} 20 q2 5 {(32 - x) / 3:.0f} 9" fill="none" stroke="currentColor" stroke-width="1.2"/>'
        for x in (10, 16, 22, 42, 48, 54)
    ),
    "bare": _CAP + _STEM,
    "none": _CAP.replace("M6 20", "M6 30").replace("58 20", "58 30").replace("-2", "8")
    + '<path d="M4 30 L60 30" stroke="currentColor" stroke-width="2"/>',
}
_BASE = _CAP + '<path d="M27 20 L26 36 M37 20 L38 36" stroke="currentColor" stroke-width="2.5" fill="none"/>'
STEM_BASE = {  # the bottom of the stem, dug up
    "cup": _BASE + '<path d="M20 34 Q20 46 32 46 Q44 46 44 34" fill="none" stroke="currentColor" stroke-width="3"/>',
    "bulb": _BASE + '<ellipse cx="32" cy="40" rx="10" ry="6" fill="none" stroke="currentColor" stroke-width="2.5"/>',
    "rooting": _BASE + '<path d="M26 36 Q32 40 30 47 M38 36 Q33 40 34 47" fill="none" stroke="currentColor" '
    'stroke-width="2"/>',
    "plain": _BASE + '<path d="M26 36 L38 36" stroke="currentColor" stroke-width="2.5"/>',
}
# colours as a person sees them (spore prints on paper, caps and gills)
SWATCHES = (
    ("white", "#f8f8f2"),
    ("cream", "#efe4c0"),
    ("yellow", "#e8cf6a"),
    ("orange", "#e08a2c"),
    ("red", "#c0392b"),
    ("pink", "#e9b4a6"),
    ("ochre", "#c98f3c"),
    ("brown", "#8a5a2b"),
    ("rust", "#a4471f"),
    ("olive", "#7c7a3a"),
    ("green", "#6f8f4e"),
    ("purple", "#7b4f8f"),
    ("grey", "#8c8c8c"),
    ("black", "#1d1b1b"),
    ("blue", "#4a78b0"),
)


def _swatch(value: str) -> str:
    low = value.lower()
    colours = [c for name, c in SWATCHES if name in low] or ["#9e9e9e"]
    width = 56 / len(colours)
    rects = "".join(
        f'<rect x="{4 + i * width:.1f}" y="8" width="{width:.1f}" height="32" fill="{c}"/>'
        for i, c in enumerate(colours[:3])
    )
    return rects + '<rect x="4" y="8" width="56" height="32" fill="none" stroke="currentColor" stroke-width="1.5"/>'


def option_picture(key: str, value: str) -> str:
    """The picture for one answer of one question ("" when there is none)."""
    value = (value or "").lower()
    if key in ("spore_print", "cap_colour", "gill_colour"):
        return _SVG.format(_swatch(value))
    table = {
        "hymenium": HYMENIUM,
        "stipe": STIPE,
        "stem_base": STEM_BASE,
        "gill_attachment": GILL_ATTACHMENT,
        "ecology": ECOLOGY,
    }.get(key, {})
    spaced = value.replace("_", " ")
    body = table.get(value) or table.get(spaced) or (table["none"] if key == "stipe" and spaced == "no stem" else "")
    return _SVG.format(body) if body else ""


__all__ = ["SWATCHES", "option_picture"]
