"""Policies, the audit ledger, review, retention and reports."""
