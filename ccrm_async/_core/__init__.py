"""The pure core: no sockets, no event loop, no aiohttp.

Request building, response checks, the status-to-error map, retry decisions,
date handling and text conversions live here as plain functions, so that they
can be tested without a server.
"""
