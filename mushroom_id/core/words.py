"""The words every text and page shares: a probability as a percent, the edibility tags, the neutral line.

Pure constants and one function, imported by the answer texts (``core.answer_text``), the red panel
(``core.danger``) and the decision rules (``core.safety``): one home, no copies.
"""

from __future__ import annotations

SHORT_EDIBILITY = {
    "deadly": "DEADLY",
    "poisonous": "POISONOUS",
    "psychoactive": "psychoactive",
    "inedible": "inedible",
    "unknown": "edibility unknown",
    "edible": "edible per sources*",
    "choice": "edible per sources*",
}
EDIBLE_NOTE = "* edible according to the catalog's sources, never on a photo's word"

# Shown only beside a top candidate that sources call edible (a person might eat it): a general rule,
# never a claim about the species on the screen. Any other answer without a red panel shows no line
# (the disclaimer at the top of the page says it for every answer).
NEUTRAL_LINE = "Many edible mushrooms have deadly lookalikes: never eat a wild mushroom on an app's word."


def percent(p: float | None) -> str:
    """A probability as every text and page shows it: "<1%" below 1%, "over 99%" where rounding would
    read 100% (no answer from a photo and a few field answers is certain), else whole percent."""
    if p is None:
        return ""
    if p < 0.01:
        return "<1%"
    if p >= 0.995:
        return "over 99%"
    return f"{p:.0%}"
