"""Encryption at rest with customer-managed keys (ACR's `encryption` with Key Vault keys).

Every registry's blobs are encrypted with data keys that Dockyard makes; the database
holds those data keys only wrapped by a key-encryption key (KEK) that the customer
controls and a key provider holds (`providers.py`): key files on the node
(`local_keys.py`) or an HSM reached through PKCS#11 (`pkcs11_keys.py`). This package
never stores a data key unwrapped and never writes key material or a PIN to a log or
an error message.
"""
