//! The built-in trainer (burn). See ARCHITECTURE.md.
