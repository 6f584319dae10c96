//! The stilts coordinator. See ARCHITECTURE.md.
