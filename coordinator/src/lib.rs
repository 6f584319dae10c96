//! The stilts coordinator. See ARCHITECTURE.md.

pub mod store;
