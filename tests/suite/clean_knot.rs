//! The Knot DNS bed: `clean` and `restore` against a real Knot DNS with TSIG, the same
//! guarantees as with BIND from a second server implementation (the tests are in
//! `every_server`).

use std::sync::OnceLock;

use crate::common::updates::{ServerKind, UpdateBed};

const ZONES: &[(&str, &[&str])] = &[
    ("kplan", &["kms1", "dead", "gone", "rogue"]),
    ("kapply", &["kms1", "dead", "gone", "rogue"]),
    ("kkeys", &["kms1", "dead"]),
];

static BED: OnceLock<UpdateBed> = OnceLock::new();

pub(crate) fn bed() -> &'static UpdateBed {
    BED.get_or_init(|| crate::common::updates::start(ServerKind::Knot, ZONES))
}
