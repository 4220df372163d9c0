"""One module per group of operations; each route is a thin call into the service."""
