pub mod classify;
pub mod model;
pub mod rpc;
