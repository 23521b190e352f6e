//! The commands' common ground, below every front end (the command line, a scheduled task, a
//! library user): in come flags, a config file and a directory; out goes one audit's settings.
//! What comes next in the pipeline — scan, classify, report, clean — takes those settings.

pub mod clean;
pub mod report;
pub mod restore;
pub mod settings;
