//! Generated gRPC types for the `stilts.v1` package. No logic lives here: conversions to domain
//! types are in `stilts-common`.
#![allow(clippy::all, missing_docs, unused_qualifications)]

pub mod v1 {
    tonic::include_proto!("stilts.v1");
}

/// The encoded `FileDescriptorSet` of `stilts.v1` (what server reflection serves).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/stilts_v1_descriptor.bin"));
