//! The one build script of the wire types: generates the `taskd-proto`
//! crate (proto/Cargo.toml names this file as its build script) from the
//! schema in `proto/taskd/v1/`: the messages, the gRPC server traits and
//! client stubs its features ask for, their proto3 JSON (serde) impls, and
//! the descriptor set that server reflection serves. The server and the
//! Rust client both use that crate, so nothing is generated twice.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "taskd/v1/task.proto",
    "taskd/v1/task_service.proto",
    "taskd/v1/system_service.proto",
    "taskd/v1/worker_service.proto",
    "taskd/v1/schedule_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Run as the build script of proto/Cargo.toml: the schema is beside it.
    let schema = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("taskd_descriptor.bin");
    let server = std::env::var_os("CARGO_FEATURE_SERVER").is_some();
    let client = std::env::var_os("CARGO_FEATURE_CLIENT").is_some();

    // A vendored protoc, so that building needs nothing installed by hand.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Well-known types come from pbjson-types, which carries their proto3 JSON
    // mapping; prost-build only skips its own prost-types default when told so.
    config.compile_well_known_types();
    // `prost::Name` on every message: the REST bridge looks each up by its
    // full name in the descriptor set to write it.
    config.enable_type_names();

    let mut builder = tonic_prost_build::configure()
        .build_server(server)
        .build_client(client)
        .file_descriptor_set_path(&descriptor_path)
        .extern_path(".google.protobuf", "::pbjson_types");
    if server {
        // prost's codec, except that a request that does not decode is
        // INVALID_ARGUMENT (src/codec.rs).
        builder = builder.codec_path("crate::codec::RequestCheckingCodec");
    }
    let protos: Vec<PathBuf> = PROTOS.iter().map(|proto| schema.join(proto)).collect();
    builder.compile_with_config(config, &protos, std::slice::from_ref(&schema))?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".taskd.v1"])?;

    println!("cargo:rerun-if-changed={}", schema.join("taskd").display());
    println!("cargo:rerun-if-changed=../build.rs");
    Ok(())
}
