//! The task catalog (as data), dataset readers for the XTREME download layout and the original
//! distributions, and metrics identical to the official scripts. No burn here: the coordinator's
//! report and `stilts score` use this crate too.

pub mod example;
