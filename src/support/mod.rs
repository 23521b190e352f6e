//! What every step uses and none owns: [`fsio`] reads and writes files as hostile ground
//! (size, type, owner, mode; atomic replacement), [`quote`] makes text safe for a shell, a
//! PowerShell prompt or a message, [`time`] keeps timestamps and durations, [`security`] reads Windows security descriptors, [`uuid`] reads the
//! UUIDs the code names, [`value`] says why a written value is refused.

pub mod fsio;
pub mod quote;
pub mod security;
pub mod time;
pub mod uuid;
pub mod value;
#[cfg(windows)]
pub mod windows;
