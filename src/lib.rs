pub mod classify;
pub mod config;
pub mod dns;
pub mod lab;
pub mod model;
pub mod probe;
pub mod rpc;
