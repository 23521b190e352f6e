//! The integration tests, one binary: real BIND 9, Knot and PowerDNS servers, an MIT KDC and a
//! Samba AD DC (feature `gss`), and real TCP listeners, each test bed started once on first use
//! and shared by every module that needs it.

mod common;

mod clean;
mod clean_knot;
mod clean_pdns;
mod cli;
mod every_server;
#[cfg(feature = "gss")]
mod gss_bind;
#[cfg(all(feature = "gss", target_os = "linux"))]
mod gss_samba;
mod hardening;
mod lab;
mod quoting;
mod report;
mod scan;
mod scan_servers;
mod silent_servers;
mod structure;
mod windows;
