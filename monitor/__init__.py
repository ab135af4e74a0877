"""monitor: a media-monitoring alert daemon.

Polls news feeds, matches new articles against YAML watchlists, dedupes them in a
database and sends one alert per story to Telegram, email or the console.
"""

__version__ = "0.1.0"
