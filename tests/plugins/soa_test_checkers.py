"""Credential checkers for the tests (``SOA_CREDENTIAL_CHECKER=soa_test_checkers:...``).

``RecordingChecker`` appends "ACCOUNT SHA256-OF-PASSWORD" to the file named by
``SOA_TEST_CHECKED_FILE`` (outside SOA_HOME), so a test can tell that a command handed
the password over without the password being written anywhere. For the account
``FIRMA\\echo`` it fails with an error whose message contains the password, as a careless
checker might: the engine must not show it.
"""

from __future__ import annotations

import hashlib
import os

from engine.ports import CredentialChecker


class RecordingChecker(CredentialChecker):
    def check(self, account: str, password: str) -> None:
        digest = hashlib.sha256(password.encode()).hexdigest()
        with open(os.environ["SOA_TEST_CHECKED_FILE"], "a", encoding="utf-8") as checked:
            checked.write(f"{account} {digest}\n")
        if account == "FIRMA\\echo":
            raise RuntimeError(f"password {password!r} is wrong")
