//! taskd's wire types, generated from the `.proto` files beside this crate
//! by the repository's one build script: the `taskd.v1` messages and gRPC
//! stubs (the `server` and `client` features choose which), their proto3
//! JSON mapping, the descriptor set server reflection serves, and what the
//! server and the Rust client share about them ([`json`], [`codec`]).

pub mod json;

#[cfg(feature = "server")]
pub mod codec;

/// The generated `taskd.v1` messages and service stubs.
#[allow(clippy::all, missing_docs)]
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/taskd.v1.rs"));
    include!(concat!(env!("OUT_DIR"), "/taskd.v1.serde.rs"));
}

/// The encoded descriptor set of the schema, for server reflection and for
/// reading messages by name.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/taskd_descriptor.bin"));
