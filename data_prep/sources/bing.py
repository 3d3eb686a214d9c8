"""``--source bing`` (default): Bing image search, every result format, with the page each image is on."""

from __future__ import annotations

from . import SearchEngine


class Bing(SearchEngine):
    name = feeder = parser = "bing"


SOURCE = Bing()
