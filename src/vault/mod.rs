//! The Vault/OpenBao provider: connection and login, observe, apply.
