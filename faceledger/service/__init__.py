"""The use cases. Each joins engine, store and governance in one place; every interface
(API, CLI) calls these and nothing below them."""
