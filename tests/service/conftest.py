from tests import databases
from tests.service.test_ledger import ledger_dir  # noqa: F401  (a fixture)

# Every test here runs on SQLite and on PostgreSQL.
database = databases.database
database_per_test = databases.database_per_test
