"""The HTTP API over the store (`stead server start`): FastAPI routes, API keys, and the
background services the server runs. The engine never imports this package."""
