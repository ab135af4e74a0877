"""Fixtures shared by every layer of tests.

The loopback fakes live in tests/fakes (one module each, each exporting its fixtures in
`__all__`); the database fixtures are in tests/fakes/databases.py.
"""

from tests.fakes.bot_api import *  # noqa: F403
from tests.fakes.databases import *  # noqa: F403
from tests.fakes.feed_server import *  # noqa: F403
from tests.fakes.runtime import *  # noqa: F403
from tests.fakes.smtp_sink import *  # noqa: F403
