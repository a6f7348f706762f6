//! End-to-end tests: a real `weft` (in-process router or the real binary) over real HTTP,
//! on SQLite and PostgreSQL.
