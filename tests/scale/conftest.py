from tests.api.conftest import shared_engine  # noqa: F401  (a fixture)
