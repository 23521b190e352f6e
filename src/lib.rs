//! vlmcs-audit: audit the `_vlmcs._tcp` SRV records that announce Microsoft KMS hosts.
//!
//! The pipeline, one module per step: [`config`] → [`discover`] (DNS, through [`dns`]) →
//! [`probe`] (TCP + DCE/RPC, through [`rpc`]) → [`classify`] → [`report`]. [`scan`] runs it;
//! [`model`] holds what flows between the steps. [`lab`] builds real loopback test beds.

pub mod ad;
pub mod auth;
pub mod classify;
pub mod clean;
pub mod command;
pub mod config;
pub mod discover;
pub mod dns;
pub mod drift;
pub mod fixit;
pub mod fsio;
#[cfg(feature = "gss")]
pub mod gss;
pub mod model;
pub mod name;
pub mod probe;
pub mod quote;
pub mod report;
pub mod rpc;
pub mod scan;
pub mod state;
pub mod time;
pub mod tkey;
pub mod tsig;
pub mod update;
