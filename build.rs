//! Generates the gRPC server code, the serde (proto3 JSON) impls and the
//! descriptor set that server reflection serves, all from `proto/`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/taskd/v1/task.proto",
    "proto/taskd/v1/task_service.proto",
    "proto/taskd/v1/system_service.proto",
    "proto/taskd/v1/worker_service.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptor_path = out_dir.join("taskd_descriptor.bin");

    // A vendored protoc, so that building needs nothing installed by hand.
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // Well-known types come from pbjson-types, which carries their proto3 JSON
    // mapping; prost-build only skips its own prost-types default when told so.
    config.compile_well_known_types();
    // `prost::Name` on every message: the REST bridge looks each up by its
    // full name in the descriptor set to write it (src/api/rest/json.rs).
    config.enable_type_names();

    tonic_prost_build::configure()
        .build_client(false)
        // prost's codec, except that a request that does not decode is
        // INVALID_ARGUMENT (src/api/codec.rs).
        .codec_path("crate::api::codec::RequestCheckingCodec")
        .file_descriptor_set_path(&descriptor_path)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_with_config(config, PROTOS, &["proto"])?;

    let descriptors = std::fs::read(&descriptor_path)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .build(&[".taskd.v1"])?;

    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
