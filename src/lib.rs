#![warn(missing_docs)]
//! vlmcs-audit: audit the `_vlmcs._tcp` SRV records that announce Microsoft KMS hosts.
//!
//! The pipeline, a folder per step: [`config`] (flags and the YAML file → settings) →
//! [`audit`] (discover through [`dns`], [`probe`] each host, classify) → [`report`] (tables,
//! JSON, metrics, fix-it pages), with [`state`] for what persists between scans and [`clean`]
//! for the one command that changes DNS. [`command`] runs each command from one request;
//! [`model`] holds what flows between the steps; [`ad`] reads Active Directory; [`support`] is
//! what all of them use.

pub mod ad;
pub mod audit;
pub mod clean;
pub mod command;
pub mod config;
pub mod dns;
pub mod model;
pub mod probe;
pub mod report;
pub mod state;
pub mod support;
