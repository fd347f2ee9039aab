//! The SQLite ledger of archives and their wrapped passwords (never a plaintext key).
//!
//! Filled in by the archive-db issue.
