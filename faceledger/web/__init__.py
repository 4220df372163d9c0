"""The console: server-rendered pages for the four roles, served by the API's server.

Every page and action calls the service layer as the API does (same permissions, same ledger);
the browser holds a session, never the API key. No script or style comes from anywhere but
this server.
"""

from faceledger.web.console import install

__all__ = ["install"]
