from tests.api.conftest import api, shared_engine  # noqa: F401  (fixtures)
