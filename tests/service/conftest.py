from tests.service.test_ledger import ledger_dir  # noqa: F401  (a fixture)
