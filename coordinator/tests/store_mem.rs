//! The in-memory test store (`store_factory/mem_store.rs`, behind the gRPC, HTTP and TLS tests)
//! against the whole conformance suite, so those tests run on a store that keeps the `Store`
//! contract. A "reopen" is a new handle on the same memory: what it checks is that nothing is
//! lost or changed by one.

mod conformance;
mod store_factory;

use store_factory::MemFactory;

store_conformance_suite!(MemFactory::default());
