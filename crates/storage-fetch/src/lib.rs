//! Readers and writers for archive objects in S3, S3-compatible and Azure Blob targets, on `object_store`.
//!
//! Filled in by the storage-fetch issue.
