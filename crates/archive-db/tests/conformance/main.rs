//! One conformance suite for both back ends of the ledger, in object_store's `integration.rs` style: each
//! rule, migration, query, writer, lease and concurrency check is written once, as a function over a
//! [`support::TestDb`], and run on a fresh SQLite file and on a fresh PostgreSQL database
//! (`ARCHIVECTL_TEST_POSTGRES_URL`; see [`support`]). Test names say the back end: `rules::postgres::...`.
#![allow(clippy::unwrap_used)]

mod support;

#[path = "../common/callbacks.rs"]
mod callbacks;

mod availability;
mod basics;
mod concurrency;
mod differential;
mod leases;
mod migrations;
mod records;
mod rules;
mod tls;
mod writer;
