"""The pure core: data in, data out. No clock, no environment, no network, no database.

Import-linter forbids this package from importing any I/O library; everything time-dependent
takes `now` as an argument.
"""
