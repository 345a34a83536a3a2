pub mod api;
pub mod engine;
pub mod store;
