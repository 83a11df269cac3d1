//! Shared helpers of the records tests.

#![allow(dead_code, unreachable_pub)]

pub mod events;
pub mod pg;
