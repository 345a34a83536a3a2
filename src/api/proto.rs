//! The generated `taskd.v1` messages and service traits.

#![allow(clippy::all, missing_docs)]

include!(concat!(env!("OUT_DIR"), "/taskd.v1.rs"));
include!(concat!(env!("OUT_DIR"), "/taskd.v1.serde.rs"));

/// The encoded descriptor set that server reflection serves.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/taskd_descriptor.bin"));
