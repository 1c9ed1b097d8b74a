//! Lowering: the typed repository -> the desired Vault state.
